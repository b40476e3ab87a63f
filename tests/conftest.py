from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway_process import RunningGateway, run_gateway
from tests.mlflow_state import forget_mlflow_state
from tests.postgres_server import postgres_cluster
from tests.storage_servers import AzureServer, S3Server, azurite_blob, seaweed_s3


@pytest.fixture(autouse=True)
def forget_mlflow_tracking_uri() -> Iterator[None]:
    """`mlflow.set_tracking_uri`, the fluent API's active experiment and runs, and the MLFLOW_* variables
    a test sets are process-global: undo them after each test, so a test never inherits an experiment
    id of another test's gateway (module fixtures that set them forget them with `forget_mlflow_state`)."""
    before = {key: value for key, value in os.environ.items() if key.startswith("MLFLOW_")}
    yield
    forget_mlflow_state(before)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    """One gateway per test module, proxied mode on local disk."""
    with run_gateway(tmp_path_factory.mktemp("gateway")) as running:
        yield running


@pytest.fixture
def fresh_dir() -> str:
    """A destination-relative directory name unique to this test."""
    return f"t-{uuid.uuid4().hex[:12]}"


def tree_snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under `root` with file contents (None for directories).

    The gateway's own logs and metadata database (which changes as it serves) are left out.
    """
    return {
        str(path.relative_to(root)): (None if path.is_dir() else path.read_bytes())
        for path in sorted(root.rglob("*"))
        if path.suffix != ".log" and not path.name.startswith("mlruns.db")
    }


def _missing(what: str, exc: Exception) -> None:
    """A missing server fails the run in CI and skips locally, naming the fix."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} unavailable in CI: {exc}")
    pytest.skip(f"{what} unavailable: {exc}")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """SeaweedFS with SigV4 auth on a random loopback port, for the whole session."""
    try:
        context = seaweed_s3(tmp_path_factory.mktemp("seaweed"))
        server, _ = context.__enter__()
    except FileNotFoundError as exc:
        _missing("SeaweedFS", exc)
    yield server
    context.__exit__(None, None, None)


@pytest.fixture(scope="session")
def azure_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzureServer]:
    """Azurite's blob service on a random loopback port, for the whole session."""
    try:
        context = azurite_blob(tmp_path_factory.mktemp("azurite"))
        server, _ = context.__enter__()
    except FileNotFoundError as exc:
        _missing("Azurite", exc)
    yield server
    context.__exit__(None, None, None)


def s3_client(server: S3Server, *, pool: int = 10) -> Any:
    """boto3 talking to `server` path-style; `pool` connections (a transfer needs one per thread)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=server.region,
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=pool),
    )


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> Iterator[str]:
    """A fresh, empty bucket; emptied (objects and open multipart uploads) and removed afterwards."""
    client = s3_client(s3_server)
    name = f"t-{uuid.uuid4().hex[:20]}"
    client.create_bucket(Bucket=name)
    yield name
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if objects:
            client.delete_objects(Bucket=name, Delete={"Objects": objects})
    for upload in client.list_multipart_uploads(Bucket=name).get("Uploads", []):
        client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    client.delete_bucket(Bucket=name)


@pytest.fixture
def azure_container(azure_server: AzureServer) -> Iterator[str]:
    """A fresh container, deleted afterwards."""
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azure_server.connection_string)
    name = f"t-{uuid.uuid4().hex[:20]}"
    service.create_container(name)
    yield name
    service.delete_container(name)


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """A throwaway PostgreSQL cluster for the session (its databases are created per module)."""
    try:
        context = postgres_cluster()
        dsn = context.__enter__()
    except FileNotFoundError as exc:
        _missing("PostgreSQL", exc)
    yield dsn
    context.__exit__(None, None, None)
