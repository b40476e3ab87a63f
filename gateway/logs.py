"""JSON log lines on stderr: one per request, one per lifecycle event."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from aiohttp import web

from gateway.http.request_keys import REQUEST_ID, client_of, user_of

LOGGER_NAME = "artifact_gateway"
log = logging.getLogger(LOGGER_NAME)


_ENCODER = json.JSONEncoder(default=str)


class JsonFormatter(logging.Formatter):
    _second: tuple[int, str] = (-1, "")  # the last second formatted, and its text: one line per request

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
        """The UTC date and time of `second`, formatted once per second."""
        cached, text = self._second
        if second != cached:
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, text)
        return text


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


QUIET_SECONDS = 10.0
_quiet: dict[str, tuple[float, int]] = {}  # kind -> (when last logged, how many since were not)


def quiet_event(
    kind: str, message: str, level: int = logging.INFO, *, exc_info: BaseException | bool = False, **fields: Any
) -> None:
    """`event`, but at most once per `QUIET_SECONDS` for each `kind`: the next line says how many were
    left out (`suppressed`). For what an attacker can make happen at will (refused connections,
    timeouts, malformed requests), so that it cannot flood the log."""
    now = time.monotonic()
    last, suppressed = _quiet.get(kind, (-QUIET_SECONDS, 0))
    if now - last < QUIET_SECONDS:
        _quiet[kind] = (last, suppressed + 1)
        return
    if len(_quiet) >= 1000:  # kinds are few; a flood of distinct ones must not grow this without end
        _quiet.clear()
    _quiet[kind] = (now, 0)
    if suppressed:
        fields["suppressed"] = suppressed
    log.log(level, message, exc_info=exc_info, extra={"fields": fields})


def audit(request: web.Request, action: str, path: str, **fields: Any) -> None:
    """One `audit` line for a change to stored artifacts: what, by whom (with auth on), by which request, from where."""
    event(
        "audit",
        action=action,
        path=path,
        request_id=request.get(REQUEST_ID),
        user=user_of(request),
        remote=client_of(request),
        **fields,
    )
