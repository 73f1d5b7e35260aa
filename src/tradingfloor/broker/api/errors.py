"""How the broker's API answers errors: Alpaca's ``{"code": int, "message": str}`` JSON.

``BrokerError`` carries its code and HTTP status; request validation failures become 422 with
code 42210000 and a message naming each bad field; unknown routes 404 with 40410000. A 429
carries ``Retry-After`` in whole seconds. ``ERROR_RESPONSES`` documents these answers in the
OpenAPI document, so that a client (or a fuzzer) knows every status an operation may give.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from tradingfloor.broker.errors import BrokerError, ErrorCode

__all__ = [
    "ERROR_RESPONSES",
    "ErrorBody",
    "describe_problems",
    "error_response",
    "install_error_handlers",
    "retry_after",
]


class ErrorBody(BaseModel):
    """Every error's JSON body (docs/broker-api.md#errors)."""

    code: int
    message: str


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# the error answers any operation may give (docs/broker-api.md#errors), for the OpenAPI document
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error("malformed JSON or parameters (40010000)"),
    401: _error("no or bad credentials, expired token, TOTP needed, user locked (4011xxxx)"),
    403: _error("the role lacks the permission, or a pre-trade risk rejection (4031xxxx)"),
    404: _error("not found (4041xxxx)"),
    409: _error("conflict, e.g. too many API keys (40910000)"),
    422: _error("invalid request; the message names each bad field (4221xxxx)"),
    429: _error("rate limited; see Retry-After (42910000)"),
    503: _error("the venue is not available; nothing was done (50310000)"),
}


def error_response(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)


def describe_problems(errors: Sequence[Any]) -> str:
    """One message naming each bad field of a validation error ("qty: ...; side: ...")."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err.get('loc', ()) if p != 'body')}: {err.get('msg', '')}"
        for err in errors
    )


def retry_after(exc: BrokerError) -> str | None:
    """The Retry-After value (whole seconds) of a rate limit or a locked login, else None."""
    wait = getattr(exc, "retry_after", None)
    return str(max(1, math.ceil(wait))) if isinstance(wait, int | float) else None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BrokerError)
    async def _broker_error(_request: Request, exc: BrokerError) -> JSONResponse:
        response = error_response(exc.status, exc.code, exc.message)
        wait = retry_after(exc)
        if wait is not None:
            response.headers["Retry-After"] = wait
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = describe_problems(exc.errors())
        return error_response(422, ErrorCode.INVALID, problems or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            400: ErrorCode.BAD_REQUEST,
            401: ErrorCode.UNAUTHORIZED,
            403: ErrorCode.FORBIDDEN,
            404: ErrorCode.NOT_FOUND,
            405: 40510000,
        }.get(exc.status_code, exc.status_code * 100000)
        return error_response(exc.status_code, int(code), str(exc.detail))
