"""FIX 4.4 tag=value wire codec: encode messages, frame and verify a TCP byte stream into messages.

Also the FIX UTCTimestamp helpers (``utc_timestamp`` / ``parse_utc_timestamp``).
"""

from __future__ import annotations

import calendar
import re
import time
import zlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Final, Protocol

import msgspec

from tradingfloor.exchange.fix import tags as t

__all__ = [
    "MAX_MESSAGE_BYTES",
    "DecodeError",
    "Message",
    "MessageFields",
    "StreamDecoder",
    "decode_message",
    "encode",
    "parse_utc_timestamp",
    "utc_timestamp",
]

MAX_MESSAGE_BYTES: Final = 64 * 1024
"""Largest accepted frame (BeginString to CheckSum inclusive); a larger one ends the session."""

SOH: Final = b"\x01"
_SOH_BYTE: Final = 1
_BEGIN_PREFIX: Final = b"8=FIX"  # any FIX version: a wrong one is reported, not skipped
_CHECKSUM_LEN: Final = 7  # b"10=ddd\x01"
_MAX_HEADER_SCAN: Final = 64  # "8=FIXT.1.1|9=nnnnn|" fits easily
_MAX_ERROR_BYTES: Final = 256  # bytes of a bad frame kept in a DecodeError for the log

# Length-prefixed data fields: the value of the data tag may contain SOH; its length is the value
# of the length tag that precedes it (FIX 4.4 "data" type).
_RAW_DATA_TAGS: Final = {
    93: 89,  # SignatureLength -> Signature
    95: 96,  # RawDataLength -> RawData
    90: 91,  # SecureDataLen -> SecureData
    212: 213,  # XmlDataLen -> XmlData
    348: 349,  # EncodedIssuerLen -> EncodedIssuer
    350: 351,  # EncodedSecurityDescLen
    352: 353,  # EncodedListExecInstLen
    354: 355,  # EncodedTextLen -> EncodedText
    356: 357,  # EncodedSubjectLen
    358: 359,  # EncodedHeadlineLen
    360: 361,  # EncodedAllocTextLen
    362: 363,  # EncodedUnderlyingIssuerLen
    364: 365,  # EncodedUnderlyingSecurityDescLen
    445: 446,  # EncodedListStatusTextLen
    618: 619,  # EncodedLegIssuerLen
    621: 622,  # EncodedLegSecurityDescLen
}
_BEGIN_STRING_BYTES: Final = t.BEGIN_STRING.encode()

# Fast paths (the careful field-by-field loops below stay the reference; see the tests):
# a body of well-formed "tag=value<SOH>" fields, with no length-of-data tag, splits with
# two regex passes; anything else (a data field, or any error) takes the careful loop.
_FIELDS_RE: Final = re.compile(r"(?:[1-9][0-9]{0,8}=[^\x01]*\x01)*")
_FIELD_RE: Final = re.compile(r"([1-9][0-9]{0,8})=([^\x01]*)\x01")
_RAW_LEN_TAG_STRS: Final = frozenset(str(tag) for tag in _RAW_DATA_TAGS)
# A length-of-data field in an encoded body, every field of which follows a SOH ("35=" leads).
_RAW_LEN_FIELD_RE: Final = re.compile(
    "\x01(?:" + "|".join(sorted(_RAW_LEN_TAG_STRS, key=lambda s: (-len(s), s))) + ")="
)
# zlib.adler32 of at most this many bytes, starting from 1, holds their exact sum + 1 in its low
# 16 bits (1 + 256 * 255 < 65521): the FIX CheckSum without a Python-level loop over the bytes.
_ADLER_CHUNK: Final = 256


class MessageFields(Protocol):
    """What rejecting a message needs from it: field lookup (``Message`` has it)."""

    def get(self, tag: int) -> str | None: ...


class Message(msgspec.Struct, frozen=True, gc=False):
    """One decoded FIX message: every field in wire order except BeginString, BodyLength, CheckSum.

    Values are the field bytes decoded as latin-1, so any byte round-trips.
    """

    fields: tuple[tuple[int, str], ...]

    @property
    def msg_type(self) -> str:
        """MsgType (35); the decoder guarantees it is present."""
        value = self.get(t.MsgType)
        if value is None:
            raise ValueError("message has no MsgType (35)")
        return value

    @property
    def seq_num(self) -> int:
        """MsgSeqNum (34) as an int; ValueError when missing or not a positive integer."""
        value = self.get(t.MsgSeqNum)
        if value is None or not value.isdigit() or not value.isascii():
            raise ValueError(f"bad MsgSeqNum (34): {value!r}")
        return int(value)

    def get(self, tag: int) -> str | None:
        """Value of the first occurrence of ``tag``, or None."""
        for k, v in self.fields:
            if k == tag:
                return v
        return None

    def get_all(self, tag: int) -> list[str]:
        """Values of every occurrence of ``tag`` in wire order (repeating groups)."""
        return [v for k, v in self.fields if k == tag]

    def has(self, tag: int) -> bool:
        """Whether ``tag`` occurs at least once."""
        return any(k == tag for k, _ in self.fields)


class DecodeError(msgspec.Struct, frozen=True, gc=False):
    """A stretch of the stream that is not a valid message.

    ``fatal`` errors (an over-long frame, a BeginString other than FIX.4.4) end the connection;
    the others are garbled messages the session ignores, as the FIX spec requires.
    """

    reason: str
    fatal: bool
    data: bytes  # the first bytes of the offending frame, for the log


def _checksum(data: bytes | bytearray | memoryview) -> int:
    """Sum of the bytes of ``data`` modulo 256 (the FIX CheckSum)."""
    size = len(data)
    if size <= _ADLER_CHUNK:
        return (zlib.adler32(data) - 1) & 0xFF
    view = memoryview(data)
    total = 0
    for pos in range(0, size, _ADLER_CHUNK):
        total += (zlib.adler32(view[pos : pos + _ADLER_CHUNK]) & 0xFFFF) - 1
    return total & 0xFF


def _encode_fields(out: list[bytes], fields: Iterable[tuple[int, str]]) -> None:
    data_tag, data_len = 0, -1  # the data field announced by the previous length field
    for tag, value in fields:
        if not value:
            raise ValueError(f"tag {tag}: empty value")
        raw = value.encode("latin-1")
        if tag == data_tag and len(raw) != data_len:
            raise ValueError(f"tag {tag}: {len(raw)} bytes but its length field says {data_len}")
        if _SOH_BYTE in raw and tag != data_tag:
            raise ValueError(f"tag {tag}: value contains SOH")
        data_tag = _RAW_DATA_TAGS.get(tag, 0) if raw.isdigit() else 0
        data_len = int(raw) if data_tag else -1
        out.append(b"%d=%b\x01" % (tag, raw))


def encode(
    begin_string: str,
    msg_type: str,
    header: Sequence[tuple[int, str]],
    body: Sequence[tuple[int, str]],
) -> bytes:
    """Encode one message: 8, 9, 35, the header fields, the body fields, 10.

    BodyLength and the 3-digit CheckSum are computed here. Values must be non-empty and free of
    SOH (except a data field whose length field precedes it): ValueError otherwise.
    Written directly rather than with ``simplefix.FixMessage`` (an object per message and a
    re-scan of its fields on every encode, on the hot path); the tests check that both produce
    the same bytes.
    """
    if not msg_type:
        raise ValueError("empty MsgType")
    payload = _encode_payload_fast(msg_type, header, body)
    if payload is None:
        parts: list[bytes] = [b"35=", msg_type.encode("latin-1"), SOH]
        _encode_fields(parts, header)
        _encode_fields(parts, body)
        payload = b"".join(parts)
    frame = b"8=%b\x019=%d\x01%b" % (begin_string.encode("latin-1"), len(payload), payload)
    return b"%b10=%03d\x01" % (frame, _checksum(frame))


def _encode_payload_fast(
    msg_type: str, header: Sequence[tuple[int, str]], body: Sequence[tuple[int, str]]
) -> bytes | None:
    """``35=...`` through the last body field as one str encoded once; None when the careful
    per-field path must decide (an empty value or SOH, a length-of-data field, a non-latin-1
    character): that path then encodes it the same way or raises its error."""
    text = "".join(
        [
            f"35={msg_type}\x01",
            *[f"{tag}={value}\x01" for tag, value in header],
            *[f"{tag}={value}\x01" for tag, value in body],
        ]
    )
    if (
        text.count("\x01") != 1 + len(header) + len(body)  # a SOH inside a value
        or "=\x01" in text  # an empty value (or one ending in "=": the careful path decides)
        or _RAW_LEN_FIELD_RE.search(text) is not None
    ):
        return None
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return None


def _parse_fields(body: bytes) -> tuple[tuple[int, str], ...] | str:
    """Split ``tag=value\\x01...`` into fields; a str is the reason it is garbled."""
    text = body.decode("latin-1")
    if _FIELDS_RE.fullmatch(text) is not None:
        found: list[tuple[str, str]] = _FIELD_RE.findall(text)
        if _RAW_LEN_TAG_STRS.isdisjoint(dict(found)):
            return tuple([(int(tag), value) for tag, value in found])
    return _parse_fields_careful(body)


def _parse_fields_careful(body: bytes) -> tuple[tuple[int, str], ...] | str:
    """``_parse_fields`` field by field: length-of-data fields, and the reason of an error."""
    fields: list[tuple[int, str]] = []
    pos = 0
    end = len(body)
    data_tag, data_len = 0, -1  # the data field announced by the previous length field
    while pos < end:
        eq = body.find(b"=", pos)
        if eq < 0:
            return f"field without '=' at byte {pos}"
        tag_bytes = body[pos:eq]
        if not tag_bytes.isdigit() or len(tag_bytes) > 9 or tag_bytes[0] == 0x30:
            return f"tag is not a positive integer: {tag_bytes[:20]!r}"
        tag = int(tag_bytes)
        if tag == data_tag:
            stop = eq + 1 + data_len
            if stop >= end or body[stop] != _SOH_BYTE:
                return f"data field {tag} does not match its length {data_len}"
        else:
            stop = body.find(SOH, eq + 1)
            if stop < 0:
                return "field not terminated by SOH"
        raw = body[eq + 1 : stop]
        value = raw.decode("latin-1")
        data_tag = _RAW_DATA_TAGS.get(tag, 0) if raw.isdigit() else 0
        data_len = int(raw) if data_tag else -1
        fields.append((tag, value))
        pos = stop + 1
    return tuple(fields)


class StreamDecoder:
    """Frames a FIX byte stream into messages, verifying BodyLength and CheckSum on the raw bytes.

    simplefix's ``FixParser`` is not used for framing: it frames on the CheckSum tag instead of
    BodyLength, verifies neither, and raises mid-buffer on garbage; a FIX engine has to frame by
    BodyLength and resynchronise on the next ``8=FIX`` after a garbled frame, which this does.
    """

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes received but not yet framed (a partial message)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Message | DecodeError]:
        """Add received bytes; return the complete messages and errors found, in stream order."""
        buf = self._buf
        buf += data
        out: list[Message | DecodeError] = []
        pos = 0
        while True:
            start = buf.find(_BEGIN_PREFIX, pos)
            if start < 0:
                # keep a possible partial "8=FIX" at the end, drop the rest as garbage
                keep = max(pos, len(buf) - (len(_BEGIN_PREFIX) - 1))
                if keep > pos:
                    out.append(DecodeError("garbage between messages", False, bytes(buf[pos:keep])))
                pos = keep
                break
            if start > pos:
                out.append(DecodeError("garbage between messages", False, bytes(buf[pos:start])))
            pos = start
            result = self._frame(buf, start)
            if result is None:
                break  # incomplete: wait for more bytes
            item, consumed = result
            out.append(item)
            if isinstance(item, DecodeError) and item.fatal:
                pos = len(buf)
                break
            pos = start + consumed
        del buf[:pos]
        return out

    @staticmethod
    def _frame(buf: bytearray, start: int) -> tuple[Message | DecodeError, int] | None:
        """Try to take one frame at ``start``; None when more bytes are needed.

        Returns the message or error and how many bytes from ``start`` to drop.
        """
        avail = len(buf) - start
        soh1 = buf.find(SOH, start, start + _MAX_HEADER_SCAN)
        soh2 = buf.find(SOH, soh1 + 1, start + _MAX_HEADER_SCAN) if soh1 >= 0 else -1
        if soh2 < 0:
            if avail < _MAX_HEADER_SCAN:
                return None
            sample = bytes(buf[start : start + _MAX_HEADER_SCAN])
            return DecodeError("no BodyLength after BeginString", False, sample), 1
        begin_string = bytes(buf[start + 2 : soh1])
        length_field = bytes(buf[soh1 + 1 : soh2])
        if not length_field.startswith(b"9=") or not length_field[2:].isdigit():
            return DecodeError("second field is not BodyLength", False, bytes(length_field)), 1
        body_len = int(length_field[2:])
        body_start = soh2 + 1
        frame_len = body_start - start + body_len + _CHECKSUM_LEN
        if frame_len > MAX_MESSAGE_BYTES:
            return DecodeError(
                f"message of {frame_len} bytes exceeds MAX_MESSAGE_BYTES={MAX_MESSAGE_BYTES}",
                True,
                bytes(buf[start : start + _MAX_ERROR_BYTES]),
            ), frame_len
        if avail < frame_len:
            return None
        body_end = body_start + body_len
        trailer = bytes(buf[body_end : body_end + _CHECKSUM_LEN])
        sample_end = min(start + frame_len, start + _MAX_ERROR_BYTES)  # bytes kept in an error
        if (
            body_len == 0
            or buf[body_end - 1] != _SOH_BYTE
            or not trailer.startswith(b"10=")
            or trailer[-1] != _SOH_BYTE
            or not trailer[3:6].isdigit()
        ):
            # the declared length does not land on a CheckSum field: resynchronise after "8="
            sample = bytes(buf[start:sample_end])
            return DecodeError("BodyLength does not match the message", False, sample), 1
        with memoryview(buf) as view:
            checksum = _checksum(view[start:body_end])
        if checksum != int(trailer[3:6]):
            reason = f"CheckSum {int(trailer[3:6]):03d} does not match computed {checksum:03d}"
            return DecodeError(reason, False, bytes(buf[start:sample_end])), frame_len
        if begin_string != _BEGIN_STRING_BYTES:
            reason = f"unsupported BeginString {begin_string.decode('latin-1')!r}"
            return DecodeError(reason, True, bytes(buf[start:sample_end])), frame_len
        fields = _parse_fields(bytes(buf[body_start:body_end]))
        if isinstance(fields, str):
            return DecodeError(fields, False, bytes(buf[start:sample_end])), frame_len
        if fields[0][0] != t.MsgType or not fields[0][1]:
            reason = "third field is not MsgType (35)"
            return DecodeError(reason, False, bytes(buf[start:sample_end])), frame_len
        return Message(fields), frame_len


def decode_message(raw: bytes) -> Message:
    """Decode exactly one complete, valid message (e.g. one read back from the store)."""
    items = StreamDecoder().feed(raw)
    if len(items) != 1 or not isinstance(items[0], Message):
        raise ValueError(f"not exactly one valid FIX message: {items!r}")
    return items[0]


# --- UTCTimestamp ------------------------------------------------------------------------------

_TS_RE: Final = re.compile(
    r"(\d{4})(\d{2})(\d{2})-(\d{2}):(\d{2}):(\d{2})(?:\.(\d{3}|\d{6}|\d{9}))?", re.ASCII
)
_NS_PER_S: Final = 1_000_000_000
_ts_cache: tuple[int, str] = (-1 << 62, "")  # (second, "YYYYMMDD-HH:MM:SS") of the last call
_TS_HEAD_LEN: Final = 17  # len("YYYYMMDD-HH:MM:SS")
_parse_cache: tuple[str, int] = ("", 0)  # ("YYYYMMDD-HH:MM:SS", its epoch second), last parsed


def utc_timestamp(ns: int) -> str:
    """FIX UTCTimestamp with milliseconds, ``YYYYMMDD-HH:MM:SS.sss``, of ``ns`` since the epoch."""
    global _ts_cache
    sec, sub = divmod(ns, _NS_PER_S)
    cached = _ts_cache  # one read: the tuple is replaced whole, never mutated
    if cached[0] != sec:
        cached = (sec, time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(sec)))
        _ts_cache = cached
    return f"{cached[1]}.{sub // 1_000_000:03d}"


def parse_utc_timestamp(s: str) -> int:
    """Nanoseconds since the epoch of a FIX UTCTimestamp (no fraction, or 3, 6 or 9 digits).

    Accepts a leap second (``:60``) as the following second. ValueError on anything else.
    """
    global _parse_cache
    m = _TS_RE.fullmatch(s)
    if m is None:
        raise ValueError(f"not a FIX UTCTimestamp: {s!r}")
    head = s[:_TS_HEAD_LEN]  # the fixed-width "YYYYMMDD-HH:MM:SS" the regex just matched
    cached = _parse_cache  # one read: the tuple is replaced whole, never mutated
    if cached[0] == head:
        seconds = cached[1]
    else:
        y, mo, d, hh, mm, ss = (int(g) for g in m.groups()[:6])
        if hh > 23 or mm > 59 or ss > 60:
            raise ValueError(f"time out of range: {s!r}")
        datetime(y, mo, d)  # validates the calendar date, raising ValueError
        seconds = calendar.timegm((y, mo, d, hh, mm, 0, 0, 0, 0)) + ss
        _parse_cache = (head, seconds)
    frac = m.group(7) or ""
    sub_ns = int(frac.ljust(9, "0")) if frac else 0
    return seconds * _NS_PER_S + sub_ns
