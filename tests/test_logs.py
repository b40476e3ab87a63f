"""The JSON log line: its fields, and the timestamp that is formatted once per second."""

from __future__ import annotations

import json
import logging
import time

from gateway.logs import JsonFormatter


def _record(created: float, **fields: object) -> logging.LogRecord:
    record = logging.LogRecord("artifact_gateway", logging.INFO, __file__, 1, "request", None, None)
    record.created = created
    record.msecs = (created - int(created)) * 1000
    record.fields = fields  # type: ignore[attr-defined]
    return record


def test_line_carries_time_level_message_and_fields() -> None:
    line = json.loads(JsonFormatter().format(_record(1_700_000_000.25, status=200, path=object())))
    assert line["ts"] == "2023-11-14T22:13:20.250Z"
    assert line["level"] == "info" and line["msg"] == "request" and line["status"] == 200
    assert line["path"].startswith("<object object")  # anything else is logged as its str()


def test_timestamp_follows_every_second_and_goes_back_too() -> None:
    formatter = JsonFormatter()
    for created in (1_700_000_000.999, 1_700_000_001.0, 1_700_000_061.5, 1_700_000_000.5):
        expected = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z"
        assert json.loads(formatter.format(_record(created)))["ts"] == expected
