"""Every tracking route, side by side with a stock `mlflow server` 3.17.2 on SQLite: the same answers.

Each case of `tests/compat/cases.py` is sent to both servers (after its setup, on each) and the
normalised answers are compared: status, `error_code`, every field, and the message where the case
asks for it. Two lists say where we do not answer as MLflow does:

- `INTENDED_DIFFERENCES`: on purpose (safer paths, 4xx JSON where MLflow answers 5xx or an HTML page,
  routes we do not serve). Those cases assert our documented answer, and MLflow's, instead of
  equality; docs/api.md lists them with the same reasons (a test checks that it names each one).
- `PENDING`: differences that are gateway bugs, not yet fixed. Each is a strict xfail: when the fix
  lands the case passes, the xfail fails, and the entry must be removed.

Developing: `COMPAT_MLFLOW_URL=http://127.0.0.1:5000` reuses a running `mlflow server`
(started as `run_mlflow_server` starts it) instead of starting one, which takes 10-20 s.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.tracking.api import AJAX_ROUTES, ROUTES
from tests.compat.cases import CASES
from tests.compat.harness import (
    API,
    Case,
    Side,
    differences,
    matches,
    run_mlflow_server,
    run_side,
)
from tests.gateway_process import run_gateway

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"

INTENDED_DIFFERENCES: dict[str, str] = {
    # safer paths and locations
    "experiments/create: artifact location on the server's disk": "MLflow stores any artifact_location, "
    "including a path on the server's own disk (resolved against its working directory) that clients then "
    "write to; we accept only mlflow-artifacts:/ and bucket locations (400 naming them)",
    "artifacts/list: ../ in path": "the same 400 INVALID_PARAMETER_VALUE, with a message naming the problem "
    "(`Invalid path: '..' segment`) where MLflow says `Invalid path` only",
    # 4xx JSON where MLflow answers 5xx, an HTML page or raw SQL
    "experiments/create: JSON array body": "MLflow answers 500 with an HTML page (an uncaught exception); "
    "we answer 400 BAD_REQUEST: the body must be a JSON object",
    "experiments/create: body not JSON": "MLflow reads a body that is not JSON as {} and complains about the "
    "first missing field; we answer 400 BAD_REQUEST saying the body is not valid JSON",
    "experiments/update: name taken": "MLflow answers 400 BAD_REQUEST with the raw SQLite IntegrityError "
    "(SQL text and parameters); we answer 400 RESOURCE_ALREADY_EXISTS, as MLflow does for experiments/create",
    "runs/create: no experiment_id": "MLflow answers 400 BAD_REQUEST with a raw SQLite FOREIGN KEY error "
    "(its store looks up the Default experiment but inserts an empty id); we answer 400 INVALID_PARAMETER_VALUE "
    "`Missing value for required parameter 'experiment_id'`",
    "runs/create: tag key a#b": "MLflow's runs/create does not check its tags (a key `a#b` is stored, though "
    "set-tag refuses it); we check them as set-tag does (400)",
    "logged-models/<id>/tags: key a#b": "MLflow stores a logged model's tag key unchecked; we check it as a run's "
    "tag key is checked (400)",
    "runs/outputs: same model twice": "MLflow answers 400 BAD_REQUEST with the raw SQLite UNIQUE constraint "
    "error; we keep the output recorded once and answer 200, so a retried request is harmless "
    "(MLflow's log-inputs is idempotent for models in the same way)",
    "metrics/get-history-bulk: max_results not a number": "MLflow answers 500 with an HTML page (an uncaught "
    "ValueError); we answer 400 INVALID_PARAMETER_VALUE naming max_results",
    "logged-models/search: page_token garbage": "MLflow answers 500 with an HTML page (an uncaught base64 "
    "error); we answer 400 INVALID_PARAMETER_VALUE naming the page_token",
    "get-artifact: missing path": "MLflow answers 400 with an HTML page (an uncaught KeyError); "
    "we answer 400 JSON naming the missing parameter",
    "get-artifact: missing run id": "MLflow answers 404 `Run with id=None not found`; "
    "we answer 400 JSON naming the missing parameter",
    "unknown route": "MLflow answers Flask's HTML 404 page; we answer MLflow's JSON error, 404 "
    "ENDPOINT_NOT_FOUND (the client maps both to the same MlflowException)",
    "wrong method": "MLflow answers Flask's HTML 405 page; we answer 405 JSON naming the allowed methods, with Allow",
    "experiments/update: deleted experiment": "MLflow refuses to rename a deleted experiment with 500 INVALID_STATE "
    "(which its client retries); we refuse it with 400 `Cannot rename a non-active experiment.`",
    "experiments/delete: already deleted": "MLflow answers 404 `No Experiment with id=<id> exists` for an experiment "
    "that exists, deleted; we answer 200 and change nothing, so a retried or double-submitted delete is not "
    "an error",
    "experiments/restore: active experiment": "MLflow answers 404 `No Experiment with id=<id> exists` for an active "
    "experiment; we answer 200 and change nothing, as for a repeated delete",
    "runs/log-batch: run_uuid only": "MLflow's log-batch reads run_id only (400 `Invalid value '' for parameter "
    "'run_id'`); we take run_uuid in its place, as MLflow's log-metric, log-parameter and set-tag do",
    "runs/log-inputs: dataset without name": "MLflow stores a dataset without a name (an empty one); we refuse it "
    "(400): a dataset is found by its name and digest",
    "metrics/get-history: unknown run": "MLflow answers 200 with no points for a run that does not exist; we answer "
    "404 RESOURCE_DOES_NOT_EXIST, so a mistyped run id is not read as an empty history (get-history-bulk, "
    "MLflow's UI route, answers as MLflow: no points)",
    "experiments/delete: both spellings of a field": "MLflow's parser also reads the camelCase spelling of "
    "a field (experimentId) and refuses both at once; we read the snake_case names its clients send, so "
    "the other spelling is ignored (200)",
    "experiments/search: without max_results": "MLflow answers 400 (`Invalid value 0 for parameter "
    "'max_results'`) when a raw request leaves it out; we return up to 1,000 experiments, the stock "
    "client's default (the client always sends one)",
    # values MLflow silently accepts or drops
    "experiments/search: unknown view type": "MLflow reads an unknown view_type as ACTIVE_ONLY; "
    "we refuse it (400 naming the three view types)",
    "runs/create: tags an object": "MLflow silently drops tags sent as a JSON object (its CreateRun schema "
    "does not check them) and creates the run without them; we refuse them with 400, as MLflow does "
    "on experiments/create and logged-models",
    "runs/create: tag value of 9,000": "MLflow's runs/create does not check its tags: SQLite stores a "
    "9,000-character value in a column declared 8,000 long; we cut it to 8,000 characters, as MLflow's "
    "set-tag does (200)",
    "runs/update: unknown status": "MLflow ignores a status it does not know (200, the run keeps its status); "
    "we refuse it (400 `Invalid value 'BOGUS' for parameter 'status'`)",
    "logged-models/<id>: finalize unknown status": "MLflow accepts any status and sets the model to "
    "LOGGED_MODEL_STATUS_UNSPECIFIED (200); we refuse it (400 `Invalid value 'BOGUS' for parameter 'status'`)",
    "traces/link-to-run: unknown trace": "MLflow records a link for any trace id it is given (200); we "
    "link only traces (and a run) that exist: 404 naming the trace, and nothing is linked",
    # routes not served, and what we say we can do
    "server-info: capabilities": "presigned uploads and the AI gateway are false because we do not serve "
    "them; an `artifact_gateway` object names our version, mode and the MLflow protocol served (multipart "
    "uploads are offered on S3 and Azure, not on local disk, where one streamed PUT is faster)",
    "upload-artifact: a small file": "MLflow answers 200 with an empty body; we answer 200 {} (JSON, like "
    "every other answer); the file is stored alike",
}
"""Case name -> why we answer differently on purpose (the same reasons are in docs/api.md)."""

MISSING_SUFFIX = (
    "MLflow's message ends with ` See the API docs for more information about request parameters.` "
    "(`Missing value for required parameter '<p>'. See the API docs...`); ours stops after the parameter"
)
RUN_ID_TYPE = (
    "MLflow: `Invalid value 31 for parameter 'run_id' supplied:  Hint: Value was of type 'int'. See the API "
    "docs...`; we: `Missing value for required parameter 'run_id'`"
)
KEY_TYPE = (
    "MLflow: `Invalid value 31 for parameter 'key' supplied:  Hint: Value was of type 'int'. See the API "
    "docs...`; we: `Missing value for required parameter 'key'`"
)
KEY_CHARS = (
    "MLflow: 400 `Invalid value \"a#b\" for parameter 'key' supplied: Names may only contain alphanumerics, "
    "underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/).`; we: 200, stored"
)
NO_DELETE_EXPERIMENT_TAG = (
    "POST experiments/delete-experiment-tag (MlflowClient.delete_experiment_tag) is not served: "
    "we answer 404 ENDPOINT_NOT_FOUND"
)
EXPERIMENT_ORDER = (
    "default order: MLflow sorts experiments by creation_time DESC, then experiment_id ASC; we by experiment_id ASC"
)
MODEL_FIELDS = (
    'logged model info: MLflow has `model_type` and `source_run_id` ("" when unset) and no `lifecycle_stage`; '
    "we leave out the unset ones and add `lifecycle_stage`"
)
MODEL_FILTER = "MLflow filters logged models on it (200); we: 400 `Unsupported logged model filter clause ...`:"

PENDING: dict[str, str] = {
    # -- messages MLflow's own tests read (see MESSAGES_READ in cases.py) --
    # -- timestamps and defaults --
    # -- key validation (MLflow's name regex `^[/\w.\- :]*$` and path_not_unique) --
    # -- long values: MLflow truncates run params and tags (MLFLOW_TRUNCATE_LONG_VALUES, on by default) --
    # -- request parsing --
    # -- experiments --
    # -- experiment search --
    # -- runs, search and history --
    # -- logged models --
    # -- anything else --
}
"""Case name -> what differs today (MLflow's answer, then ours): gateway bugs being fixed."""


@dataclass(frozen=True)
class Servers:
    mlflow: str
    gateway: str


@dataclass(frozen=True)
class Exchange:
    case: Case
    mlflow: Side
    gateway: Side


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """A stock `mlflow server` and the gateway, both on SQLite with proxied artifacts on local disk."""
    workdir = tmp_path_factory.mktemp("compat")
    with contextlib.ExitStack() as stack:
        mlflow_url = os.environ.get("COMPAT_MLFLOW_URL") or stack.enter_context(run_mlflow_server(workdir / "mlflow"))
        gateway_dir = workdir / "gateway"
        gateway = stack.enter_context(
            run_gateway(gateway_dir, "--backend-store-uri", f"sqlite:///{gateway_dir / 'mlruns.db'}")
        )
        yield Servers(mlflow_url, gateway.url)


@pytest.fixture(scope="module")
def exchange(servers: Servers) -> Iterator[Callable[[Case], Exchange]]:
    """Run a case on both servers, once per module."""
    done: dict[str, Exchange] = {}
    nonce = uuid.uuid4().hex[:6]
    counter = itertools.count()
    with ThreadPoolExecutor(2) as pool:  # both servers at once: a case takes as long as the slower one

        def run(case: Case) -> Exchange:
            if case.name not in done:
                unique = f"{nonce}-{next(counter)}"
                mlflow = pool.submit(run_side, servers.mlflow, case, unique)
                gateway = pool.submit(run_side, servers.gateway, case, unique)
                done[case.name] = Exchange(case, mlflow.result(), gateway.result())
            return done[case.name]

        yield run


def _compared(case: Case) -> object:
    pending = case.name in PENDING
    marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=PENDING[case.name])] if pending else []
    return pytest.param(case, id=case.name, marks=marks)


@pytest.mark.parametrize("case", [_compared(case) for case in CASES if case.ours is None])
def test_same_answer(case: Case, exchange: Callable[[Case], Exchange]) -> None:
    done = exchange(case)
    found = differences(case, done.mlflow, done.gateway, ignore=frozenset())
    assert not found, f"{case.method} {case.path}: the gateway answers differently:\n  " + "\n  ".join(found)


@pytest.mark.parametrize("case", [pytest.param(case, id=case.name) for case in CASES if case.ours is not None])
def test_intended_difference(case: Case, exchange: Callable[[Case], Exchange]) -> None:
    done = exchange(case)
    assert case.ours is not None and case.theirs is not None
    theirs, ours = done.mlflow.replies[0], done.gateway.replies[0]
    assert matches(theirs, case.theirs), f"MLflow no longer answers as listed: {theirs.status} {theirs.body}"
    assert matches(ours, case.ours), f"the gateway does not give its documented answer: {ours.status} {ours.body}"
    found = differences(case, done.mlflow, done.gateway, ignore=frozenset(), after_only=True)
    assert not found, "what the case stored differs:\n  " + "\n  ".join(found)


def test_lists_name_cases() -> None:
    names = {case.name for case in CASES}
    assert set(PENDING) <= names, f"PENDING names no case: {set(PENDING) - names}"
    intended = {case.name for case in CASES if case.ours is not None}
    assert set(INTENDED_DIFFERENCES) == intended, "INTENDED_DIFFERENCES must list exactly the cases with `ours`"
    assert not set(PENDING) & intended, "a case is either pending or intended, not both"


def test_docs_list_every_intended_difference() -> None:
    text = DOCS.read_text()
    missing = [name for name in INTENDED_DIFFERENCES if f"`{name}`" not in text]
    assert not missing, f"docs/api.md does not name these intended differences: {missing}"


def test_every_tracking_route_has_cases() -> None:
    """Each route of gateway/tracking/api.py (add_routes) is exercised by at least one case."""

    def pattern(path: str) -> re.Pattern[str]:
        return re.compile(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path)) + "$")

    covered = [(case.method, case.path.replace("{", "<").replace("}", ">")) for case in CASES if case.prefix != ""]
    routes = [(method, path) for method, path, _, _ in [*ROUTES, *AJAX_ROUTES]]
    missing = [
        f"{method} {API}{path}"
        for method, path in routes
        if not any(m == method and pattern(path).match(p) for m, p in covered)
    ]
    assert not missing, f"routes without a side-by-side case: {missing}"
