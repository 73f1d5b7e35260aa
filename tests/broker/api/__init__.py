"""Tests of the broker's HTTP API: the alpaca-py SDK against it, OpenAPI fuzzing, RBAC."""
