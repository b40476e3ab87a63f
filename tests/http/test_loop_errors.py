"""The event loop's exception handler: what nobody retrieved is logged once, a connection error without a traceback."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from gateway.http.connections import quiet_loop_errors


def test_a_connection_error_nobody_retrieved_is_one_line_without_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    reset = f"Future exception was never retrieved ({uuid.uuid4().hex})"  # a kind of its own: never suppressed
    other = f"Task exception was never retrieved ({uuid.uuid4().hex})"
    loop = asyncio.new_event_loop()
    try:
        with caplog.at_level(logging.DEBUG):
            quiet_loop_errors(loop, {"message": reset, "exception": ConnectionResetError("closing transport")})
            quiet_loop_errors(loop, {"message": other, "exception": ValueError("a bug")})
    finally:
        loop.close()
    records = {record.getMessage(): record for record in caplog.records}
    assert records[reset].levelno == logging.WARNING and not records[reset].exc_info
    assert records[other].levelno == logging.ERROR and records[other].exc_info  # a bug keeps its traceback
