"""JSON log lines on stderr: one per request, one per lifecycle event."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from aiohttp import web

from gateway.request_keys import PRINCIPAL, REQUEST_ID

LOGGER_NAME = "artifact_gateway"
log = logging.getLogger(LOGGER_NAME)


_ENCODER = json.JSONEncoder(default=str)


class JsonFormatter(logging.Formatter):
    _second = -1
    _second_text = ""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": f"{self._timestamp(int(record.created))}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return _ENCODER.encode(line)

    def _timestamp(self, second: int) -> str:
        """The line's UTC date and time to the second, formatted once per second (one line per request)."""
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return self._second_text


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    log.setLevel(level.upper())


def event(message: str, level: int = logging.INFO, *, exc_info: bool = False, **fields: Any) -> None:
    """Log `message` with structured `fields`."""
    log.log(level, message, exc_info=exc_info, extra={"fields": fields})


def audit(request: web.Request, action: str, path: str, **fields: Any) -> None:
    """One `audit` line for a change to stored artifacts: what, by whom (with auth on), by which request, from where."""
    principal = request.get(PRINCIPAL)
    event(
        "audit",
        action=action,
        path=path,
        request_id=request.get(REQUEST_ID),
        user=principal.username if principal is not None else None,
        remote=request.remote,
        **fields,
    )
