"""Every tracking route, side by side with a stock `mlflow server` 3.17.2 on SQLite: the same answers.

Each case of `tests/compat/cases.py` is sent to both servers (after its setup, on each) and the
normalised answers are compared: status, `error_code`, every field, and the message where the case
asks for it. Three lists say where we do not answer as MLflow does:

- `INTENDED_DIFFERENCES`: on purpose (safer paths, 4xx JSON where MLflow answers 5xx or an HTML page,
  routes we do not serve). Those cases assert our documented answer, and MLflow's, instead of
  equality; docs/api.md lists them with the same reasons (a test checks that it names each one).
- `PENDING`: differences that are gateway bugs, not yet fixed. Each is a strict xfail: when the fix
  lands the case passes, the xfail fails, and the entry must be removed.
- `PENDING_FIELDS`: fields missing or extra in many answers at once (the error body's `sqlstate`,
  experiments' `workspace`...). They are left out of the per-case comparison and compared once,
  across every case, by `test_field`, also a strict xfail.

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
    normalised,
    occurrences,
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
    "(its store looks up the Default experiment but inserts an empty id); we create the run in the Default "
    "experiment, which is what MLflow's store means to do",
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
    # values MLflow silently accepts or drops
    "experiments/search: unknown view type": "MLflow reads an unknown view_type as ACTIVE_ONLY; "
    "we refuse it (400 naming the three view types)",
    "runs/create: tags an object": "MLflow silently drops tags sent as a JSON object (its CreateRun schema "
    "does not check them) and creates the run without them; we refuse them with 400, as MLflow does "
    "on experiments/create and logged-models",
    "runs/create: tag value of 9,000": "MLflow's runs/create does not check its tags: SQLite stores a "
    "9,000-character value in a column declared 8,000 long; we refuse it (400 naming the limit) on every "
    "database, as MLflow's set-tag limit is 8,000",
    "runs/update: unknown status": "MLflow ignores a status it does not know (200, the run keeps its status); "
    "we refuse it (400 `Invalid value 'BOGUS' for parameter 'status'`)",
    "logged-models/<id>: finalize unknown status": "MLflow accepts any status and sets the model to "
    "LOGGED_MODEL_STATUS_UNSPECIFIED (200); we refuse it (400 `Invalid value 'BOGUS' for parameter 'status'`)",
    # routes not served, and what we say we can do
    "registered models: not served": "no model registry here (What is not served): 404 ENDPOINT_NOT_FOUND",
    "experiments/search-datasets: not served": "a UI-only route of MLflow's React UI, not served (404)",
    "metrics/get-history-bulk-interval: not served": "the sampled metric intervals of MLflow's React UI "
    "charts, not served (404)",
    "server-info: capabilities": "multipart_uploads_enabled is true because multipart uploads work here on "
    "local disk (MLflow: false); presigned uploads and the AI gateway are false or absent because we do not "
    "serve them; an `artifact_gateway` object names our version and mode",
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
    "experiments/create: missing name": MISSING_SUFFIX,
    "experiments/create: name a number": "MLflow: `Invalid value 123 for parameter 'name' supplied:  Hint: Value was "
    "of type 'int'. See the API docs...` (type checked before anything else); we: `Missing value for required "
    "parameter 'name'`",
    "experiments/create: artifact_location a number": "MLflow: `Invalid value 9.0 for parameter 'artifact_location' "
    "supplied:  Hint: Value was of type 'float'...`; we: `'artifact_location' '9.0' is not allowed: use "
    "mlflow-artifacts:/...` (a JSON type error should get MLflow's type message first)",
    "experiments/create: tags a string": "MLflow: `Invalid value \"5\" for parameter 'tags' supplied:  Hint: Value "
    "was of type 'str'...`; we: `Invalid value for parameter 'tags': every entry must be a JSON object`",
    "runs/log-metric: run_id a number": RUN_ID_TYPE,
    "runs/log-metric: run_id null": MISSING_SUFFIX,
    "runs/log-metric: missing key": MISSING_SUFFIX,
    "runs/log-metric: key null": MISSING_SUFFIX,
    "runs/log-metric: key a number": KEY_TYPE,
    "runs/log-metric: step not a number": "MLflow: `Invalid value \"foo\" for parameter 'step' supplied:  Hint: Value "
    "was of type 'str'...`; we: `'step' must be an integer, got 'foo'`",
    "runs/log-metric: timestamp not a number": "MLflow: `Invalid value \"foo\" for parameter 'timestamp' supplied:  "
    "Hint: Value was of type 'str'...`; we: `'timestamp' must be an integer, got 'foo'`",
    "runs/log-parameter: run_id a number": RUN_ID_TYPE,
    "runs/log-parameter: key a number": KEY_TYPE,
    "runs/set-tag: run_id a number": RUN_ID_TYPE,
    "runs/set-tag: value a number": "MLflow: `Invalid value 41 for parameter 'value' supplied:  Hint: Value was of "
    "type 'int'...`; we: `'value' must be a string`",
    "runs/set-tag: missing key": MISSING_SUFFIX,
    "runs/log-batch: metrics a string": "MLflow: `Invalid value \"foo\" for parameter 'metrics' supplied:  Hint: Value "
    "was of type 'str'...`; we: `Invalid value for parameter 'metrics': every entry must be a JSON object`",
    "runs/log-batch: params a string": "MLflow: `Invalid value \"foo\" for parameter 'params' supplied:  Hint: Value "
    "was of type 'str'...`; we: `Invalid value for parameter 'params': every entry must be a JSON object`",
    "runs/log-batch: tags a string": "MLflow: `Invalid value \"foo\" for parameter 'tags' supplied:  Hint: Value "
    "was of type 'str'...`; we: `Invalid value for parameter 'tags': every entry must be a JSON object`",
    "runs/log-inputs: missing run id": MISSING_SUFFIX,
    "runs/search: max_results too large": "MLflow: `Invalid value 123456789 for parameter 'max_results' supplied:  "
    "Hint: Value was of type 'int'. See the API docs...` (sic); we: `Invalid value for max_results: it must be from "
    "1 to 50000`",
    # -- timestamps and defaults --
    "runs/log-metric: missing timestamp": "MLflow: 400 `Missing value for required parameter 'timestamp'. See the "
    "API docs...`; we: 200, the point stored at the server's time",
    "runs/log-batch: metric without timestamp": "MLflow: 400 `Missing value for required parameter "
    "'metrics[0].timestamp'. See the API docs...`; we: 200, the point stored at the server's time",
    "runs/log-metric: negative timestamp": "MLflow: 400 `Invalid value -1 for parameter 'timestamp' supplied: metric "
    "'m' (value=1.0). Timestamp must be a nonnegative long (64-bit integer) ` (trailing space); we: 200, stored",
    "runs/create: experiment only": "MLflow: start_time 0 when none is given; we: the server's time",
    # -- key validation (MLflow's name regex `^[/\w.\- :]*$` and path_not_unique) --
    "experiments/create: tag key a#b": KEY_CHARS,
    "experiments/create: name of 501": "MLflow: 400 `'name' exceeds the maximum length of 500 characters`; we: 200",
    "experiments/set-experiment-tag: key a#b": KEY_CHARS,
    "runs/log-metric: key a#b": KEY_CHARS + " (parameter 'name' for metrics)",
    "runs/log-parameter: key a#b": KEY_CHARS,
    "runs/set-tag: key a#b": KEY_CHARS,
    "runs/log-batch: metric key a#b": KEY_CHARS + " (parameter 'metrics[0].name')",
    "runs/log-batch: param key a#b": KEY_CHARS + " (parameter 'params[0].key')",
    "runs/log-metric: key a//b": "MLflow: 400 `Invalid value \"a//b\" for parameter 'name' supplied: Names may be "
    "treated as files in certain cases, and must not resolve to other names when treated as such. This name would "
    "resolve to 'a/b'`; we: 200, stored",
    "runs/log-metric: bad key and unknown run": "MLflow checks keys before looking the run up: 400 "
    "INVALID_PARAMETER_VALUE for `a#b`; we: 404 RESOURCE_DOES_NOT_EXIST (and we accept `a#b` anyway)",
    "logged-models: create name a/b": "MLflow: 400 `Invalid model name ('a/b') provided. Model name must be a "
    "non-empty string and cannot contain the following characters: ('/', ':', '.', '%', '\"', \"'\")`; we: 200",
    # -- long values: MLflow truncates run params and tags (MLFLOW_TRUNCATE_LONG_VALUES, on by default) --
    "runs/log-parameter: value of 6,001": "MLflow: 200, stored truncated to 6,000 characters; we: 400 "
    "`'value' is longer than 6000 characters`",
    "runs/set-tag: value of 8,001": "MLflow: 200, stored truncated to 8,000 characters; we: 400 "
    "`'value' is longer than 8000 characters`",
    "runs/log-batch: param value of 7,000": "MLflow: 200, stored truncated to 6,000 characters; we: 400",
    "runs/log-batch: tag value of 9,000": "MLflow: 200, stored truncated to 8,000 characters; we: 400",
    "experiments/set-experiment-tag: value of 20,000": "MLflow: experiment tag values up to 20,000 characters "
    "(200); we: 400 `'value' is longer than 8000 characters`",
    # -- request parsing --
    "experiments/create: text/plain body": "MLflow: 400 INVALID_PARAMETER_VALUE `Bad Request. Content-Type must be one "
    "of ['application/json'].`; we: the same message with error_code BAD_REQUEST",
    "runs/log-batch: text/plain body": "MLflow: 400 INVALID_PARAMETER_VALUE `Bad Request. Content-Type must be one "
    "of ['application/json'].`; we: the same message with error_code BAD_REQUEST",
    "experiments/create: no Content-Type": "MLflow: 400 INVALID_PARAMETER_VALUE `Bad Request. Content-Type header is "
    "missing.`; we: 400 BAD_REQUEST `Bad Request. Content-Type must be one of ['application/json'].`",
    "experiments/delete: both spellings of a field": "MLflow: 400 `Request specifies both 'experiment_id' and "
    "'experimentId'; provide only one of them.`; we: 200",
    "runs/log-metric: value a numeric string": 'MLflow: 200, `"1.5"` stored as 1.5 (protobuf\'s JSON reads a '
    "numeric string as a double); we: 400 `Invalid metric value '1.5': must be a number`",
    "runs/log-metric: infinities": "MLflow's SQL store keeps Infinity as the largest double: runs/get and "
    'get-history answer 1.7976931348623157e+308; we answer "Infinity"',
    "runs/outputs: no models": "MLflow: 400 `Missing value for required parameter 'models'. See the API docs...`; "
    "we: 200",
    "runs/log-batch: run_uuid only": 'MLflow\'s log-batch reads run_id only: 400 `Invalid value "" for parameter '
    "'run_id' supplied.`; we fall back to run_uuid (200), as log-metric does",
    "runs/log-inputs: dataset without name": "MLflow: 200, stored with an empty name; we: 400 `Each dataset input "
    "needs a 'dataset' with 'name' and 'digest'`",
    "runs/create: run name and tag differ": "MLflow: 400 `Both 'run_name' argument and 'mlflow.runName' tag are "
    "specified, but with different values (run_name='a', mlflow.runName='b').`; we: 200",
    # -- experiments --
    "experiments/update: deleted experiment": "MLflow refuses: 500 INVALID_STATE `Cannot rename a non-active "
    "experiment.`; we rename it (200). Refuse it with a 4xx, then move this case to INTENDED_DIFFERENCES",
    "experiments/delete: already deleted": "MLflow: 404 RESOURCE_DOES_NOT_EXIST `No Experiment with id=<id> exists`; "
    "we: 200",
    "experiments/restore: active experiment": "MLflow: 404 RESOURCE_DOES_NOT_EXIST `No Experiment with id=<id> "
    "exists`; we: 200",
    "experiments/set-experiment-tag: deleted experiment": "MLflow: 400 `The experiment <id> must be in the 'active' "
    "state. Current state is deleted.`; we: 200",
    "experiments/delete-experiment-tag: delete": NO_DELETE_EXPERIMENT_TAG + " (MLflow: 200, the tag removed)",
    "experiments/delete-experiment-tag: missing tag": NO_DELETE_EXPERIMENT_TAG
    + " (MLflow: 404 RESOURCE_DOES_NOT_EXIST `No tag with name: nope in experiment with id <id>`)",
    # -- experiment search --
    "experiments/search: by name prefix": EXPERIMENT_ORDER,
    "experiments/search: all view types": EXPERIMENT_ORDER,
    "experiments/search: GET": EXPERIMENT_ORDER,
    "experiments/search: max_results a string": EXPERIMENT_ORDER,
    "experiments/search: name ILIKE": EXPERIMENT_ORDER,
    "experiments/search: tag ILIKE": EXPERIMENT_ORDER,
    "experiments/search: order by name desc": "order_by is ignored: MLflow sorts by `attribute.name DESC`; we by "
    "experiment_id",
    "experiments/search: order by an unknown key": "MLflow: 400 `Invalid attribute key 'bogus' specified. Valid keys "
    "are '{...}'`; we ignore order_by (200)",
    "experiments/search: order by a tag": "MLflow: 400 `Invalid order_by entity: tag`; we ignore order_by (200)",
    "experiments/search: order by a bad direction": "MLflow: 400 `Invalid ordering key in order_by clause 'name "
    "ASCENDING'.`; we ignore order_by (200)",
    "experiments/search: order_by a string": "MLflow: 400 `Invalid value \"name\" for parameter 'order_by' supplied:  "
    "Hint: Value was of type 'str'...`; we ignore order_by (200)",
    "experiments/search: name LIKE is case-sensitive": "MLflow's LIKE is case-sensitive on SQLite (`LIKE '<x>-a%'` "
    "finds alpha2 only); ours is not (Alpha and alpha2)",
    "experiments/search: tag LIKE is case-sensitive": "MLflow's LIKE is case-sensitive on SQLite (`tags.team LIKE "
    "'r%'` finds 'red' only); ours is not ('Red' too), and the order differs as in the cases above",
    "experiments/search: tag. prefix": "MLflow accepts `tag.team = 'Red'` as `tags.team`; we: 400 `Invalid attribute "
    "key 'tag.team' in experiment filter`",
    "experiments/search: tag IS NULL": "MLflow supports `tags.team IS NULL` (200, the experiments without the tag); "
    "we: 400 `Invalid clause 'tags.team IS NULL' in experiment filter`",
    "experiments/search: creation_time": "MLflow filters on `creation_time > 0` (integer ms; also last_update_time); "
    "we: 400 `Invalid clause 'creation_time > 0' in experiment filter`",
    "experiments/search: OR": "MLflow: 400 `Invalid clause(s) in filter string: OR`; we: 200 {}",
    "experiments/search: view type as a number": "MLflow accepts view_type as its enum number (3 = ALL); we: 400 "
    "`Invalid value for parameter 'view_type': it must be a string`",
    "experiments/search: without max_results": "MLflow: 400 `Invalid value 0 for parameter 'max_results' supplied. "
    "It must be a positive integer` (no max_results over raw REST; its client always sends one); we default to "
    "1,000 (200). If kept on purpose, move to INTENDED_DIFFERENCES and docs/api.md",
    # -- runs, search and history --
    "runs/log-inputs: model": "runs/get after logging a model input: MLflow shows `inputs.model_inputs: "
    "[{model_id}]`; we do not (log-inputs ignores `models`)",
    "runs/search: param LIKE is case-sensitive": "MLflow's LIKE is case-sensitive on SQLite (`params.opt LIKE 'a%'` "
    "finds 'adam' only); ours is not ('Adam' too)",
    "metrics/get-history: unknown run": "MLflow: 200 {} (no points) for a run that does not exist; we: 404 "
    "RESOURCE_DOES_NOT_EXIST. If kept on purpose, move to INTENDED_DIFFERENCES and docs/api.md",
    "metrics/get-history-bulk: unknown run": 'MLflow: 200 `{"metrics": []}`; we: 404 RESOURCE_DOES_NOT_EXIST',
    # -- logged models --
    "logged-models: create": MODEL_FIELDS,
    "logged-models/<id>: get": MODEL_FIELDS,
    "logged-models/<id>: finalize": MODEL_FIELDS,
    "logged-models/<id>: finalize as failed": MODEL_FIELDS,
    "logged-models/<id>/tags: set": MODEL_FIELDS + " (in the logged-models/<id> that follows)",
    "logged-models/<id>/tags/<key>: delete": MODEL_FIELDS + " (in the logged-models/<id> that follows)",
    "runs/log-metric: with a model id": MODEL_FIELDS + " (in the logged-models/<id> that follows)",
    "logged-models/search: all": MODEL_FIELDS,
    "logged-models/search: by name": MODEL_FIELDS,
    "logged-models/search: first page": MODEL_FIELDS,
    "logged-models: create without name": "MLflow names an unnamed model like a run (`<adjective>-<noun>-<n>`); we "
    "name it `model`. " + MODEL_FIELDS,
    "logged-models/<id>: deleted, allow_deleted": "MLflow: GET logged-models/<id>?allow_deleted=true answers the "
    "deleted model (200); we: 404",
    "logged-models/<id>: delete twice": "MLflow: deleting a deleted model is 200; we: 404",
    "logged-models/<id>/tags/<key>: missing tag": "MLflow: 404 RESOURCE_DOES_NOT_EXIST `No tag with key 'nope' found "
    "for model with ID '<id>'.`; we: 200",
    "logged-models/<id>/params: log": "POST logged-models/<id>/params (the client's log_model_params) is not served: "
    "MLflow 200 and the params show in the model's data.params; we: 404 ENDPOINT_NOT_FOUND",
    "logged-models/<id>/artifacts/directories: list": "GET logged-models/<id>/artifacts/directories is not served: "
    "MLflow 200 `{root_uri, files}`; we: 404 ENDPOINT_NOT_FOUND (or list it as not served, on purpose)",
    "logged-models/search: name LIKE is case-sensitive": MODEL_FILTER + " `name LIKE 'M%'` (MLflow: 200 {}, "
    "case-sensitive)",
    "logged-models/search: by tag": MODEL_FILTER + " `tags.t = 'v'`",
    "logged-models/search: by metric": MODEL_FILTER + " `metrics.acc > 0.5` (MLflow: the models with any such "
    "metric point)",
    "logged-models/search: OR": 'MLflow: 400 `Invalid filter string: "...". Expected a list of comparisons '
    "separated by 'AND' (e.g. 'metrics.loss > 0.1 AND params.lr = 0.01').`; we: 200",
    "logged-models/search: order by name": "order_by is ignored: MLflow sorts by name (model, other); we by "
    "creation time. " + MODEL_FIELDS,
    "logged-models/search: order by an unknown field": "MLflow: 400 `Invalid order by field name: bogus` (sqlstate "
    "KAM04, error_class ATTRIBUTE_NOT_FOUND); we ignore order_by (200)",
    "logged-models/search: missing experiment ids": "MLflow: 400 `Missing value for required parameter "
    "'experiment_ids'. See the API docs...`; we search every experiment (200)",
    "logged-models/search: experiment ids a string": 'MLflow: 400 `Invalid value "2" for parameter '
    "'experiment_ids' supplied:  Hint: Value was of type 'str'...`; we read it as [\"2\"] (200)",
    # -- anything else --
    "version": "MLflow: `3.17.2` (RestStore.log_spans refuses servers older than 3.4); we: `0.1.0`, our own "
    "version. Also update docs/api.md (What is not served) when this changes",
}
"""Case name -> what differs today (MLflow's answer, then ours): gateway bugs being fixed."""

PENDING_FIELDS: dict[str, str] = {
    "sqlstate": "MLflow 3.17's error body has `sqlstate` (KAM00 for client errors, XXM00 for internal ones, "
    "KAM04 for ATTRIBUTE_NOT_FOUND); ours has none",
    "error_class": "MLflow 3.17's error body has `error_class` (INVALID_PARAMETER_VALUE, RESOURCE_NOT_FOUND, "
    "RESOURCE_ALREADY_EXISTS, CLIENT_INTERNAL_ERROR...); ours has none",
    "workspace": 'MLflow gives every experiment `workspace: "default"`; ours has no such field',
    "outputs": "MLflow leaves `outputs` out of a run that has none; we send `outputs: {}`",
}
"""Field -> how it differs in every answer that has it; compared across all cases by `test_field`."""


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
    """Run a case on both servers, once per module (test_field reads the answers of every case)."""
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
    found = differences(case, done.mlflow, done.gateway, ignore=frozenset(PENDING_FIELDS))
    assert not found, f"{case.method} {case.path}: the gateway answers differently:\n  " + "\n  ".join(found)


@pytest.mark.parametrize("case", [pytest.param(case, id=case.name) for case in CASES if case.ours is not None])
def test_intended_difference(case: Case, exchange: Callable[[Case], Exchange]) -> None:
    done = exchange(case)
    assert case.ours is not None and case.theirs is not None
    theirs, ours = done.mlflow.replies[0], done.gateway.replies[0]
    assert matches(theirs, case.theirs), f"MLflow no longer answers as listed: {theirs.status} {theirs.body}"
    assert matches(ours, case.ours), f"the gateway does not give its documented answer: {ours.status} {ours.body}"
    found = differences(case, done.mlflow, done.gateway, ignore=frozenset(PENDING_FIELDS), after_only=True)
    assert not found, "what the case stored differs:\n  " + "\n  ".join(found)


def _field(name: str) -> object:
    mark = pytest.mark.xfail(strict=True, raises=AssertionError, reason=PENDING_FIELDS[name])
    return pytest.param(name, id=name, marks=[mark])


@pytest.mark.parametrize("name", [_field(name) for name in PENDING_FIELDS])
def test_field(name: str, exchange: Callable[[Case], Exchange]) -> None:
    """One field left out of the per-case comparison, compared in every answer of every case."""
    found = []
    for case in CASES:
        if case.ours is not None:
            continue
        done = exchange(case)
        for index, (theirs, ours) in enumerate(zip(done.mlflow.replies, done.gateway.replies, strict=True)):
            if theirs.status != ours.status:
                continue
            their_body = normalised(done.mlflow, theirs, case, ignore=frozenset(), compare_message=True)
            our_body = normalised(done.gateway, ours, case, ignore=frozenset(), compare_message=True)
            their_values, our_values = occurrences(their_body, name), occurrences(our_body, name)
            if their_values != our_values:
                found.append(f"{case.name} (answer {index}): mlflow {their_values}, gateway {our_values}")
    assert not found, f"'{name}' differs in {len(found)} answers:\n  " + "\n  ".join(found[:20])


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
