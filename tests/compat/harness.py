"""Send one request to a stock `mlflow server` and to the gateway, and say how the answers differ.

A `Case` is one request (method, path below the tracking prefix, JSON body or query) with optional
`setup` steps run first on each server (create an experiment, a run, a model...) whose ids are saved
under names and substituted into the request wherever `{name}` appears. Both answers are normalised
(the ids each server made become `<name>`, times of the last hours `<now>`, generated run and model
names `<random name>`, page tokens `<token>`, tags and params sorted by key) and compared: the HTTP
status, the `error_code`, the message where the case asks for it, and every other field.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.storage_servers import free_ports, stop

API = "/api/2.0/mlflow"
AJAX = "/ajax-api/2.0/mlflow"
ROOT = ""
"""`prefix=ROOT`: the case's path is the whole path (`/version`, `/api/3.0/mlflow/server-info`)."""


# -- the stock server ----------------------------------------------------------------------------


@contextlib.contextmanager
def run_mlflow_server(workdir: Path, timeout: float = 180.0, backend_store_uri: str | None = None) -> Iterator[str]:
    """`mlflow server` with proxied artifacts on local disk (`workdir/art`), until the block ends; its URL.

    Its store is `workdir/mlflow.db` (SQLite) unless `backend_store_uri` names another
    (`postgresql+psycopg2://...`). It takes 10-20 s to start (migrations of a new database, then
    uvicorn), more on a busy machine.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_ports(1)[0]
    command = [
        *(sys.executable, "-m", "mlflow", "server"),
        *("--backend-store-uri", backend_store_uri or f"sqlite:///{workdir / 'mlflow.db'}"),
        *("--artifacts-destination", str(workdir / "art")),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "ARTIFACT_GATEWAY_"))}
    log_path = workdir / "mlflow-server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            command,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"mlflow server did not answer /health in {timeout} s:\n{log_path.read_text()[-3000:]}"
                )
            time.sleep(0.25)
        yield url
    finally:
        stop(proc)


# -- cases ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One request of a case's setup (which must answer 200) or of its `after` checks (compared).

    `save` names values of the answer for later requests: `{"run_id": "run.info.run_id"}`.
    """

    method: str
    path: str
    body: Any = None
    query: Mapping[str, Any] | None = None
    save: Mapping[str, str] = field(default_factory=dict)
    prefix: str = API
    raw: bytes | None = None


@dataclass(frozen=True)
class Answer:
    """What one server answers: a status, and the error code and a part of the message for errors."""

    status: int
    error_code: str | None = None
    message: str | None = None
    """A part of the message, or None to not look at it."""
    json: bool = True
    """Whether the body is JSON (MLflow answers some errors with an HTML page)."""
    fields: Mapping[str, Any] = field(default_factory=dict)
    """Top-level fields of the JSON body and their values."""


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    body: Any = None
    """The JSON body (`{name}` substituted in every string); None: no body."""
    query: Mapping[str, Any] | None = None
    """The query string; a list value repeats its key (`run_id=a&run_id=b`)."""
    setup: tuple[Step, ...] = ()
    after: tuple[Step, ...] = ()
    """Requests sent after the case's own, whose answers are compared too (what the case stored)."""
    raw: bytes | None = None
    """A body sent as it is instead of `body` (`{name}` substituted when it is UTF-8), with `headers`
    (no Content-Type unless given)."""
    headers: Mapping[str, str] = field(default_factory=dict)
    prefix: str = API
    compare_message: bool = False
    """Compare the error message too: where a client or MLflow's own tests read it."""
    compare_headers: tuple[str, ...] = ()
    """Response headers compared too (of the case's own answer)."""
    unordered: tuple[str, ...] = ()
    """Lists compared as sets, besides tags and params: where the order depends on random ids."""
    ours: Answer | None = None
    theirs: Answer | None = None
    """For an intended difference: our documented answer, and MLflow's (both asserted)."""


# -- sending -------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    content_type: str
    body: Any  # the JSON, or the text of a non-JSON answer
    is_json: bool
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Side:
    """One server's view of a case: its saved ids and its replies (the case's own first, then `after`)."""

    context: dict[str, str]
    replies: list[Reply]


class SetupFailed(RuntimeError):
    """A setup step did not answer 200: the case cannot say anything (and is no expected failure)."""


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def fill(value: Any, context: Mapping[str, str]) -> Any:
    """`value` with every `{name}` of `context` substituted, in strings, keys and nested values."""
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: context.get(m.group(1), m.group(0)), value)
    if isinstance(value, dict):
        return {fill(k, context): fill(v, context) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [fill(item, context) for item in value]
    return value


def send(
    url: str,
    method: str,
    path: str,
    *,
    body: Any = None,
    query: Mapping[str, Any] | None = None,
    raw: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    kwargs: dict[str, Any] = {"params": query, "headers": dict(headers or {}), "timeout": 30}
    if raw is not None:
        kwargs["data"] = raw
    elif body is not None:
        kwargs["json"] = body
    response = requests.request(method, url + path, **kwargs)
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    headers = {name.lower(): value for name, value in response.headers.items()}
    if content_type == "application/json":
        try:
            return Reply(response.status_code, content_type, response.json(), True, headers)
        except ValueError:
            pass
    return Reply(response.status_code, content_type, response.text, False, headers)


def _dig(value: Any, dotted: str) -> str:
    for part in dotted.split("."):
        value = value[part]
    return str(value)


def run_side(url: str, case: Case, unique: str) -> Side:
    """The case on one server: its setup (each step must answer 200), its request, its `after` requests."""
    context = {"unique": unique}
    for step in case.setup:
        reply = _send_step(url, step, context)
        if step.path.endswith(_CREATES):
            time.sleep(0.002)  # distinct creation times: orders by time are then the same on both servers
        if reply.status != 200:
            raise SetupFailed(f"setup {step.method} {step.path} on {url} answered {reply.status}: {reply.body}")
        for name, dotted in step.save.items():
            context[name] = _dig(reply.body, dotted)
    replies = [
        send(
            url,
            case.method,
            case.prefix + fill(case.path, context),
            body=fill(case.body, context),
            query=fill(case.query, context),
            raw=_fill_raw(case.raw, context),
            headers=case.headers,
        )
    ]
    replies.extend(_send_step(url, step, context) for step in case.after)
    return Side(context, replies)


_CREATES = ("/experiments/create", "/runs/create", "/logged-models")


def _fill_raw(raw: bytes | None, context: Mapping[str, str]) -> bytes | None:
    try:
        return None if raw is None else fill(raw.decode(), context).encode()
    except UnicodeDecodeError:
        return raw


def _send_step(url: str, step: Step, context: Mapping[str, str]) -> Reply:
    path = step.prefix + fill(step.path, context)
    return send(url, step.method, path, body=fill(step.body, context), query=fill(step.query, context), raw=step.raw)


# -- normalising ---------------------------------------------------------------------------------

TIME_KEYS = frozenset(
    {
        "creation_time",
        "last_update_time",
        "start_time",
        "end_time",
        "timestamp",
        "creation_timestamp",
        "last_updated_timestamp",
        "creation_timestamp_ms",
        "last_updated_timestamp_ms",
    }
)
_STARTED_MS = int(time.time() * 1000) - 86_400_000  # a day: also a reused server's Default experiment
UNORDERED = frozenset({"tags", "params"})
"""Lists compared as sets: the client turns them into dicts (and MLflow's order is the database's)."""
_RANDOM_NAME = re.compile(r"[a-z]+-[a-z]+-\d{1,4}")
_RUN_ID = re.compile(r"\b[0-9a-f]{32}\b")
_MODEL_ID = re.compile(r"\bm-[0-9a-f]{32}\b")
_EXPERIMENT_URI = re.compile(r"(mlflow-artifacts:/)(\d+)\b")


class Normaliser:
    """One server's answers with its own ids, times and generated names replaced by placeholders."""

    def __init__(self, context: Mapping[str, str], unordered: tuple[str, ...] = ()) -> None:
        self.ids = {value: f"<{name}>" for name, value in context.items() if name != "unique"}
        self.unordered = UNORDERED | set(unordered)

    def _id(self, value: str, generic: str) -> str:
        return self.ids.get(value, generic)

    def text(self, value: str) -> str:
        value = _MODEL_ID.sub(lambda m: self._id(m.group(0), "<new model id>"), value)
        value = _RUN_ID.sub(lambda m: self._id(m.group(0), "<new run id>"), value)
        return _EXPERIMENT_URI.sub(lambda m: m.group(1) + self._id(m.group(2), "<new experiment id>"), value)

    def __call__(self, value: Any, key: str | None = None, parent: str | None = None) -> Any:
        if isinstance(value, dict):
            out = {k: self(v, k, key) for k, v in value.items()}
            if value.get("key") == "mlflow.runName" and _RANDOM_NAME.fullmatch(str(value.get("value"))):
                out["value"] = "<random name>"
            return out
        if isinstance(value, list):
            items = [self(item, key, parent) for item in value]
            if key in self.unordered or (key == "metrics" and parent == "data"):
                items.sort(key=lambda item: json.dumps(item, sort_keys=True))
            return items
        if isinstance(value, str):
            if key == "next_page_token":
                return "<token>"
            if key in ("run_name", "name") and _RANDOM_NAME.fullmatch(value):
                return "<random name>"
            if key == "experiment_id" and value.isdigit():
                return self._id(value, "<new experiment id>")
            return self.text(value)
        if isinstance(value, int) and not isinstance(value, bool) and key in TIME_KEYS and value >= _STARTED_MS:
            return "<now>"
        return value


def normalised(
    side: Side, reply: Reply, case: Case, *, ignore: frozenset[str], compare_message: bool | None = None
) -> Any:
    if not reply.is_json:  # an HTML error page, or a file: short texts are compared
        text = str(reply.body)
        return {"<not JSON>": text if len(text) <= 64 else f"{len(text)} characters of {reply.content_type or '?'}"}
    body = Normaliser(side.context, case.unordered)(reply.body)
    if compare_message is None:
        compare_message = case.compare_message
    if isinstance(body, dict):
        if "error_code" in body and not compare_message:
            body.pop("message", None)
        body = _without(body, ignore)
    return body


def _without(value: Any, keys: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_without(item, keys) for item in value]
    return value


# -- comparing -----------------------------------------------------------------------------------


def tree_differences(theirs: Any, ours: Any, path: str = "") -> list[str]:
    """Where two JSON values differ, one line per place: `path: mlflow X, gateway Y`."""
    if isinstance(theirs, dict) and isinstance(ours, dict):
        lines = []
        for key in sorted(set(theirs) | set(ours)):
            where = f"{path}.{key}"
            if key not in theirs:
                lines.append(f"{where}: mlflow has no such field, gateway {_short(ours[key])}")
            elif key not in ours:
                lines.append(f"{where}: mlflow {_short(theirs[key])}, gateway has no such field")
            else:
                lines.extend(tree_differences(theirs[key], ours[key], where))
        return lines
    if isinstance(theirs, list) and isinstance(ours, list) and len(theirs) == len(ours):
        return [
            line
            for index, (their_item, our_item) in enumerate(zip(theirs, ours, strict=True))
            for line in tree_differences(their_item, our_item, f"{path}[{index}]")
        ]
    if theirs != ours:
        return [f"{path or 'body'}: mlflow {_short(theirs)}, gateway {_short(ours)}"]
    return []


def _short(value: Any, limit: int = 300) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit] + "..."


def differences(
    case: Case, mlflow: Side, gateway: Side, *, ignore: frozenset[str], after_only: bool = False
) -> list[str]:
    """Every way the gateway's answers differ from MLflow's, once normalised; empty when they agree.

    `after_only`: only the answers to the case's `after` requests (its own differs on purpose).
    """
    lines = []
    labels = ["", *(f"after {step.method} {step.path}: " for step in case.after)]
    for index, (label, theirs, ours) in enumerate(zip(labels, mlflow.replies, gateway.replies, strict=True)):
        if after_only and index == 0:
            continue
        if theirs.status != ours.status:
            lines.append(f"{label}status: mlflow {theirs.status}, gateway {ours.status}")
        their_body = normalised(mlflow, theirs, case, ignore=ignore)
        our_body = normalised(gateway, ours, case, ignore=ignore)
        lines.extend(label + line for line in tree_differences(their_body, our_body))
    theirs, ours = mlflow.replies[0], gateway.replies[0]
    for name in () if after_only else case.compare_headers:
        their_value, our_value = theirs.headers.get(name.lower()), ours.headers.get(name.lower())
        if their_value != our_value:
            lines.append(f"header {name}: mlflow {their_value!r}, gateway {our_value!r}")
    return lines


def matches(reply: Reply, answer: Answer) -> bool:
    if reply.status != answer.status or reply.is_json != answer.json:
        return False
    if not reply.is_json:
        return True
    body = reply.body if isinstance(reply.body, dict) else {}
    if answer.error_code is not None and body.get("error_code") != answer.error_code:
        return False
    if any(body.get(name) != value for name, value in answer.fields.items()):
        return False
    return answer.message is None or answer.message in str(body.get("message", ""))
