"""DNS rebinding (finding 8 of the security review): any Host was accepted, so a page on
`attacker.example`, its name pointed at 127.0.0.1, posted a form that created an experiment and read
the artifact listing of a loopback gateway. `--allowed-hosts` (MLflow's flag) now decides which names
a request may use, before routing; names that cannot be rebound (localhost, IP addresses) always pass.
"""

from __future__ import annotations

import http.client
import json
import uuid
from pathlib import Path

import pytest
import requests
from mlflow import MlflowClient

from tests.gateway_process import ARTIFACTS, RunningGateway, run_gateway


def request_as(
    gateway: RunningGateway,
    host: str,
    method: str,
    target: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """`method target` sent with exactly `host` as its Host header."""
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    try:
        connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_a_rebound_name_can_neither_write_nor_read(gateway: RunningGateway) -> None:
    name = f"rebound-{uuid.uuid4().hex[:8]}"
    requests.put(gateway.artifact_url("secret/listing.txt"), data=b"x", timeout=30).raise_for_status()
    rebound = f"attacker.example:{gateway.port}"
    form = {"Content-Type": "application/x-www-form-urlencoded", "Origin": f"http://{rebound}"}
    status, body = request_as(gateway, rebound, "POST", "/experiments", f"name={name}".encode(), form)
    assert status == 403 and b"DNS rebinding" in body
    assert MlflowClient(gateway.url).get_experiment_by_name(name) is None
    for target in (f"{ARTIFACTS}?path=secret", "/no/such/route", f"{ARTIFACTS}/secret/listing.txt"):
        status, body = request_as(gateway, rebound, "GET", target)
        assert status == 403 and b"listing.txt" not in body, (target, body)
        assert json.loads(body)["error_code"] == "PERMISSION_DENIED"
    assert request_as(gateway, "10.attacker.example", "GET", f"{ARTIFACTS}?path=secret")[0] == 403
    for probe in ("/health", "/health/ready", "/version"):  # probes send what they like
        assert request_as(gateway, rebound, "GET", probe)[0] == 200


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:{port}",
        "localhost:{port}",
        "LOCALHOST",
        "[::1]:{port}",
        "app.localhost",
        "10.1.2.3",
        "203.0.113.9:80",
    ],
)
def test_loopback_names_and_addresses_pass_by_default(gateway: RunningGateway, host: str) -> None:
    status, body = request_as(gateway, host.format(port=gateway.port), "GET", f"{ARTIFACTS}?path=")
    assert status == 200, body


def test_allowed_hosts_and_public_url_add_names(tmp_path: Path) -> None:
    args = (
        "--allowed-hosts",
        "mlflow.example.com, *.corp.example, pinned.example:8443",
        "--public-url",
        "https://public.example",
    )
    with run_gateway(tmp_path / "named", *args) as gateway:
        allowed = [
            "mlflow.example.com",
            "MLflow.Example.com:5000",
            "a.b.corp.example",
            "pinned.example:8443",
            "public.example",
            "127.0.0.1",
        ]
        for host in allowed:
            assert request_as(gateway, host, "GET", f"{ARTIFACTS}?path=")[0] == 200, host
        for host in ("corp.example", "pinned.example:80", "example.com", "mlflow.example.com.evil"):
            assert request_as(gateway, host, "GET", f"{ARTIFACTS}?path=")[0] == 403, host
    with run_gateway(tmp_path / "any", "--allowed-hosts", "*") as gateway:
        assert request_as(gateway, "whatever.example", "GET", f"{ARTIFACTS}?path=")[0] == 200


def test_mlflow_environment_name_is_accepted(tmp_path: Path) -> None:
    with run_gateway(tmp_path, env={"MLFLOW_SERVER_ALLOWED_HOSTS": "svc.internal"}) as gateway:
        assert request_as(gateway, "svc.internal:5000", "GET", f"{ARTIFACTS}?path=")[0] == 200
        assert request_as(gateway, "other.internal", "GET", f"{ARTIFACTS}?path=")[0] == 403


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        (None, True),
        ("", True),
        ("[fe80::1]", True),
        ("::1", True),
        ("localhost.", True),
        ("x.localhost:1", True),
        ("localhost.attacker.example", False),
        ("127.0.0.1.nip.io", False),
        ("0x7f.1", False),
    ],
)
def test_the_default_rules(host: str | None, allowed: bool) -> None:
    from gateway.http.hosts import AllowedHosts

    assert AllowedHosts(None).allows(host) is allowed
