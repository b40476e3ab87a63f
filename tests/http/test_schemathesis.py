"""Schemathesis against a real gateway: requests generated from its /openapi.json, never a 5xx.

The gateway runs as a subprocess (proxied mode, local disk in a temporary directory), as in the other
HTTP tests, once on SQLite and once on PostgreSQL. Schemathesis generates valid and invalid requests
for every operation of the document (its examples, coverage and fuzzing phases; at most
MAX_EXAMPLES fuzzed cases per operation, derandomized with a fixed seed, so a run is repeatable and
takes about a minute) and checks each answer: no server error, a documented status code and content
type, headers and body as documented. The ids of an experiment, a run and a logged model that exist
(and an artifact file) are mixed into the generated requests, so handlers get past "not found";
deleting operations get objects of their own, so the others still find theirs alive.

The tests are parametrized at collection time from the document of an app built in this process;
the fixture checks that the running gateway serves exactly that document before any request is
sent. (Schemathesis' lazy `from_fixture` loader would read it from the gateway itself, but in 4.32
it relies on a pytest internal, `Function._nodeid`, that pytest 9.2 no longer has.)

The /ajax-api/ twins of the /api/ routes run the same handlers and are left out to halve the time.
"""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis import HookContext

from gateway.app import create_app
from gateway.http.openapi import build_document
from gateway.server import open_destination
from gateway.settings import Settings
from tests.gateway_process import RunningGateway, run_gateway
from tests.postgres_server import create_database

MAX_EXAMPLES = 25
SEED = 20261127
CONFIG = {
    "seed": SEED,
    "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
    "checks": {
        "enabled": False,
        "not_a_server_error": {"enabled": True},
        "status_code_conformance": {"enabled": True},
        "content_type_conformance": {"enabled": True},
        "response_schema_conformance": {"enabled": True},
        "response_headers_conformance": {"enabled": True},
    },
    "operations": [
        {
            # Local disk cannot presign: this route's documented answer is 501, whatever the input.
            "include-path-regex": "/presigned/",
            "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "501"]}},
        }
    ],
}


def in_process_document() -> dict[str, Any]:
    """The document of a proxied-mode app, built here to parametrize the tests at collection time."""
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(artifacts_destination=scratch, artifacts_only=False, serve_artifacts=True)
        return build_document(create_app(settings, open_destination(settings), b"k" * 32))


DOCUMENT = in_process_document()
EXISTING: dict[str, dict[str, Any]] = {}
"""Objects that exist in the running gateway, by role, filled in by its fixture before any case is generated:
`kept` for every operation, `victim` for the ones that delete (so the others still find theirs alive)."""


def create_objects(gateway: RunningGateway, role: str) -> dict[str, Any]:
    api = f"{gateway.url}/api/2.0/mlflow"
    experiment_id = requests.post(
        f"{api}/experiments/create", json={"name": f"{role}-{uuid.uuid4().hex[:8]}"}, timeout=10
    ).json()["experiment_id"]
    run_id = requests.post(f"{api}/runs/create", json={"experiment_id": experiment_id}, timeout=10).json()["run"][
        "info"
    ]["run_id"]
    model_id = requests.post(
        f"{api}/logged-models", json={"experiment_id": experiment_id, "source_run_id": run_id}, timeout=10
    ).json()["model"]["info"]["model_id"]
    requests.put(gateway.artifact_url(f"{role}/file.txt"), data=b"hello", timeout=10).raise_for_status()
    run_info = requests.get(f"{api}/runs/get", params={"run_id": run_id}, timeout=10).json()["run"]["info"]
    run_root = run_info["artifact_uri"].removeprefix("mlflow-artifacts:/")
    requests.put(gateway.artifact_url(f"{run_root}/file.txt"), data=b"run file", timeout=10).raise_for_status()
    return {
        "experiment_id": experiment_id,
        "experiment_ids": [experiment_id],
        "run_id": run_id,
        "run_uuid": run_id,
        "source_run_id": run_id,
        "model_id": model_id,
        "directory": role,
        "file": f"{role}/file.txt",
        "run_file": "file.txt",
    }


@contextlib.contextmanager
def fuzzed_gateway(workdir: Path, store: str) -> Iterator[RunningGateway]:
    """A gateway of its own (the fuzzing writes and deletes freely), serving the document the tests use."""
    with run_gateway(workdir, "--backend-store-uri", store) as gateway:
        served = requests.get(f"{gateway.url}/openapi.json", timeout=10).json()
        assert served == json.loads(json.dumps(DOCUMENT)), "the gateway serves another document than the tests use"
        EXISTING.update(kept=create_objects(gateway, "kept"), victim=create_objects(gateway, "victim"))
        yield gateway
        EXISTING.clear()


@pytest.fixture(scope="module")
def sqlite_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    """Every operation, on SQLite."""
    workdir = tmp_path_factory.mktemp("schemathesis-sqlite")
    with fuzzed_gateway(workdir, f"sqlite:///{workdir / 'mlruns.db'}") as gateway:
        yield gateway


@pytest.fixture(scope="module")
def postgres_gateway(tmp_path_factory: pytest.TempPathFactory, postgres_dsn: str) -> Iterator[RunningGateway]:
    """The tracking operations (the ones that reach the database) again on PostgreSQL, which refuses
    more than SQLite does: NUL characters, out-of-range numbers."""
    store = create_database(postgres_dsn, f"s{uuid.uuid4().hex[:12]}")
    with fuzzed_gateway(tmp_path_factory.mktemp("schemathesis-postgresql"), store) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


RUN_SCOPED = re.compile(r"/(runs/(?!create|search)[a-z-]+|metrics/get-history|artifacts/list|get-artifact)$")


def with_existing_objects(context: HookContext, values: Any) -> st.SearchStrategy[Any]:
    """`values` as generated, or with the ids (and artifact paths) of objects that exist put in.

    Generated ids almost never name anything, so without this every handler would stop at "not
    found"; with it, the generated garbage in the other fields reaches the store and the storage.
    """
    operation = context.operation
    if not isinstance(values, dict) or not EXISTING or operation is None:
        return st.just(values)
    destructive = operation.method.upper() == "DELETE" or operation.path.endswith("/delete")
    existing = EXISTING["victim" if destructive else "kept"]
    replaced = {name: existing.get(name, value) for name, value in values.items()}
    if "path" in values and "/mlflow-artifacts/" in operation.path:  # the path parameter or the listing's query
        directory = operation.path.endswith("/artifacts") or "/mpu/" in operation.path or "/archive/" in operation.path
        replaced["path"] = existing["directory" if directory or destructive else "file"]
    if "path" in values and operation.path == "/get-artifact":
        replaced["path"] = existing["run_file"]
    if RUN_SCOPED.search(operation.path) and "run_id" not in values and "run_uuid" not in values:
        replaced["run_id"] = existing["run_id"]
    return st.sampled_from([values, replaced]) if replaced != values else st.just(values)


schema = schemathesis.openapi.from_dict(DOCUMENT, config=schemathesis.Config.from_dict(CONFIG)).exclude(
    path_regex="^/ajax-api/"
)
tracking_schema = schema.include(path_regex="^/api/2.0/mlflow/")
for container in ("body", "query", "path_parameters"):
    schema.hooks.register_hook_with_name(with_existing_objects, f"flatmap_{container}")


@schema.parametrize()
def test_generated_requests_get_documented_answers_and_never_a_server_error(
    case: schemathesis.Case, sqlite_gateway: RunningGateway, session: requests.Session
) -> None:
    case.call_and_validate(base_url=sqlite_gateway.url, session=session, timeout=30)


@tracking_schema.parametrize()
def test_generated_tracking_requests_on_postgresql(
    case: schemathesis.Case, postgres_gateway: RunningGateway, session: requests.Session
) -> None:
    case.call_and_validate(base_url=postgres_gateway.url, session=session, timeout=30)
