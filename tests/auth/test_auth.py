"""Authentication and authorization with --auth: every route, the stock client, the CLI, rate limits, TLS."""

from __future__ import annotations

import base64
import concurrent.futures
import datetime
import http.client
import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
import requests
from aiohttp import web
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mlflow.exceptions import MlflowException

from gateway import app as app_module
from gateway.app import create_app
from gateway.http.access import ROUTE_ACCESS_KEY, Access
from gateway.server import open_destination
from gateway.settings import load_settings
from tests.gateway_process import RunningGateway, run_cli, run_gateway
from tests.postgres_server import create_database

PASSWORDS = {"boss": "admin-password-1", "writer": "writer-password-1", "reader": "reader-password-1"}
PERMISSIONS = {"boss": "admin", "writer": "write", "reader": "read"}
MODES = {"proxied": [], "artifacts-only": ["--artifacts-only"], "no-proxy": ["--no-serve-artifacts"]}


def cli(*args: str, stdin: str = "", store: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, "--backend-store-uri", store, stdin=stdin)


def add_user(store: str, name: str, permission: str, password: str) -> None:
    added = cli("users", "add", name, "--permission", permission, "--password-stdin", stdin=password, store=store)
    assert added.returncode == 0, added.stderr


@dataclass
class Credentials:
    store: str
    tokens: dict[str, str]  # user -> a token with that user's permission


@pytest.fixture(scope="module")
def credentials(tmp_path_factory: pytest.TempPathFactory) -> Credentials:
    store = f"sqlite:///{tmp_path_factory.mktemp('auth') / 'auth.db'}"
    tokens = {}
    for user, password in PASSWORDS.items():
        add_user(store, user, PERMISSIONS[user], password)
        created = cli("tokens", "create", "--user", user, "--name", f"{user}-ci", store=store)
        assert created.returncode == 0, created.stderr
        tokens[user] = created.stdout.strip()
    return Credentials(store, tokens)


@pytest.fixture(scope="module")
def secured(credentials: Credentials, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    with run_gateway(
        tmp_path_factory.mktemp("secured"),
        "--auth",
        "--local-multipart-uploads",  # the signed part URLs are what these tests check, with auth on
        "--backend-store-uri",
        credentials.store,
        "--failed-login-limit",
        "0",
    ) as running:
        yield running


def basic(user: str, password: str | None = None) -> dict[str, str]:
    pair = f"{user}:{PASSWORDS[user] if password is None else password}".encode()
    return {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def concrete(template: str) -> str:
    """A request path for a route template: every variable filled with a harmless value."""
    return re.sub(r"\{[^}]+\}", "walk-probe", template)


def route_table(mode_args: list[str], store: str) -> list[tuple[str, str, Access]]:
    """(method, path, access) of every route the server builds for these flags, as `serve` builds them."""
    overrides: dict[str, object] = {"auth": True, "backend_store_uri": store}
    for flag in mode_args:
        overrides[flag.removeprefix("--no-").removeprefix("--").replace("-", "_")] = not flag.startswith("--no-")
    if "--no-serve-artifacts" in mode_args:
        overrides["default_artifact_root"] = "s3://bucket/root"
    settings = load_settings(overrides)
    application = create_app(settings, open_destination(settings), b"k" * 32)
    table = []
    for route, access in application[ROUTE_ACCESS_KEY].items():
        assert route.resource is not None
        methods = ["GET", "PUT", "POST", "DELETE"] if route.method == "*" else [route.method]
        table.extend((method, concrete(route.resource.canonical), access) for method in methods)
    return table


@pytest.mark.parametrize("mode", MODES)
def test_every_route_refuses_missing_wrong_and_too_weak_credentials(
    mode: str, credentials: Credentials, tmp_path: Path
) -> None:
    """Walks the route table the server builds: a route added without a check fails here."""
    args = MODES[mode] + (["--default-artifact-root", "s3://bucket/root"] if mode == "no-proxy" else [])
    table = route_table(MODES[mode], credentials.store)
    assert len(table) >= (10 if mode != "proxied" else 60)
    limitless = ("--failed-login-limit", "0")  # the walk fails on purpose, hundreds of times
    with run_gateway(tmp_path / "gw", "--auth", "--backend-store-uri", credentials.store, *limitless, *args) as gw:
        session = requests.Session()
        for method, path, access in table:

            def call(headers: dict[str, str], method: str = method, path: str = path) -> int:
                body = b"{}" if method in ("POST", "PATCH", "PUT") else None
                return session.request(method, gw.url + path, headers=headers, data=body, timeout=30).status_code

            where = f"{method} {path} ({access.value})"
            if access is Access.PUBLIC:
                assert call({}) not in (401, 403), where
                continue
            if access is Access.SIGNED:  # the credential is the URL's signed grant
                assert call({}) == 403, where
                assert call(basic("writer")) == 403, where  # a password does not stand in for the grant
                continue
            assert call({}) == 401, where
            assert call(basic("writer", "wrong-password!")) == 401, where
            assert call(bearer("agw_00000000_not-a-real-token")) == 401, where
            weaker = {Access.READ: None, Access.WRITE: "reader", Access.ADMIN: "writer"}[access]
            if weaker is not None:
                assert call(basic(weaker)) == 403, where
                assert call(bearer(credentials.tokens[weaker])) == 403, where
            strong_enough = {Access.READ: "reader", Access.WRITE: "writer", Access.ADMIN: "boss"}[access]
            assert call(basic(strong_enough)) not in (401, 403, 429), where
            assert call(bearer(credentials.tokens[strong_enough])) not in (401, 403, 429), where


async def unchecked(request: web.Request) -> web.Response:
    return web.Response(text="no check")


def test_a_route_added_without_an_access_rule_stops_the_app_from_being_built(
    credentials: Credentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = app_module.meta_api.add_routes

    def sneaky(application: web.Application) -> None:
        original(application)
        application.router.add_get("/sneaky", unchecked)

    monkeypatch.setattr(app_module.meta_api, "add_routes", sneaky)
    settings = load_settings({"auth": True, "backend_store_uri": credentials.store})
    with pytest.raises(RuntimeError, match=r"GET /sneaky"):
        create_app(settings, open_destination(settings), b"k" * 32)


def test_401_tells_the_client_how_to_authenticate(secured: RunningGateway) -> None:
    response = requests.get(f"{secured.url}/api/2.0/mlflow/experiments/search", timeout=10)
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"
    assert "MLFLOW_TRACKING_USERNAME" in response.json()["message"]
    assert response.headers["WWW-Authenticate"].startswith('Basic realm="artifact-gateway"')
    assert "Bearer" in response.headers["WWW-Authenticate"]
    assert requests.get(f"{secured.url}/health", timeout=10).status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        "Basic !!!not-base64",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
        "Bearer",
        "Digest username=writer",
        "Basic " + base64.b64encode(b":writer-password-1").decode(),
    ],
)
def test_malformed_credentials_are_401_not_500(secured: RunningGateway, header: str) -> None:
    response = requests.get(
        f"{secured.url}/api/2.0/mlflow/experiments/search", headers={"Authorization": header}, timeout=10
    )
    assert response.status_code == 401


def test_a_read_only_user_cannot_change_anything(secured: RunningGateway, credentials: Credentials) -> None:
    path = f"{uuid.uuid4().hex}/weights.bin"
    url = secured.artifact_url(path)
    assert requests.put(url, data=b"v1", headers=basic("writer"), timeout=10).status_code == 200
    refused = requests.put(url, data=b"v2 from a reader", headers=basic("reader"), timeout=10)
    assert refused.status_code == 403
    assert refused.json()["error_code"] == "PERMISSION_DENIED"
    assert "'reader' has read permission" in refused.json()["message"]
    assert requests.delete(url, headers=bearer(credentials.tokens["reader"]), timeout=10).status_code == 403
    assert requests.get(url, headers=basic("reader"), timeout=10).content == b"v1"  # untouched
    audit = [line for line in secured.log_lines() if line.get("msg") == "audit" and line.get("path") == path]
    assert [(line["action"], line["user"]) for line in audit] == [("put", "writer")]


@pytest.fixture
def client_env(secured: RunningGateway, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in list(os.environ):
        if name.startswith("MLFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", secured.url)
    mlflow.set_tracking_uri(secured.url)  # other modules set the global one
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(1024 * 1024))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * 1024 * 1024))
    yield monkeypatch


def _log_a_run(tmp_path: Path) -> tuple[str, bytes]:
    """A run with a param, a metric and a multipart-sized artifact, through the stock client."""
    mlflow.set_experiment(f"auth-{uuid.uuid4().hex[:8]}")
    big = tmp_path / "model.bin"
    big.write_bytes(os.urandom(11 * 1024 * 1024))
    with mlflow.start_run() as run:
        mlflow.log_param("lr", "0.1")
        mlflow.log_metric("loss", 0.5)
        mlflow.log_artifact(str(big))
    return run.info.run_id, big.read_bytes()


@pytest.mark.parametrize("way", ["password", "token"])
def test_stock_client_works_with_a_password_or_a_token(
    way: str, client_env: pytest.MonkeyPatch, credentials: Credentials, secured: RunningGateway, tmp_path: Path
) -> None:
    if way == "password":
        client_env.setenv("MLFLOW_TRACKING_USERNAME", "writer")
        client_env.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORDS["writer"])
    else:
        client_env.setenv("MLFLOW_TRACKING_TOKEN", credentials.tokens["writer"])
    run_id, data = _log_a_run(tmp_path)
    fetched = mlflow.get_run(run_id)
    assert fetched.data.params == {"lr": "0.1"}
    downloaded = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="model.bin", dst_path=str(tmp_path / "dl")
    )
    assert Path(downloaded).read_bytes() == data
    requests_seen = [(line.get("method"), line.get("path"), line.get("status")) for line in secured.log_lines()]
    assert ("PUT", "/api/2.0/mlflow-artifacts/mpu/part", 200) in requests_seen  # the part URLs worked too
    completes = [line for line in secured.log_lines() if line.get("action") == "complete_multipart"]
    assert completes[-1]["user"] == "writer"


def test_stock_client_without_or_with_a_weak_credential_is_refused_clearly(
    client_env: pytest.MonkeyPatch, credentials: Credentials, tmp_path: Path
) -> None:
    with pytest.raises(MlflowException, match=r"401|UNAUTHENTICATED"):
        mlflow.search_experiments()
    client_env.setenv("MLFLOW_TRACKING_TOKEN", credentials.tokens["reader"])
    assert mlflow.search_experiments()  # reading is allowed
    with pytest.raises(MlflowException, match=r"PERMISSION_DENIED|403"):
        mlflow.create_experiment(f"not-allowed-{uuid.uuid4().hex[:8]}")


def test_admin_lists_users_and_tokens_without_secrets(secured: RunningGateway, credentials: Credentials) -> None:
    url = f"{secured.url}/api/2.0/artifact-gateway/users"
    assert requests.get(url, headers=basic("writer"), timeout=10).status_code == 403
    listing = requests.get(url, headers=bearer(credentials.tokens["boss"]), timeout=10)
    assert listing.status_code == 200
    body = listing.json()
    assert {u["username"]: u["permission"] for u in body["users"]} == PERMISSIONS
    assert {t["username"] for t in body["tokens"]} == set(PASSWORDS)
    text = listing.text
    assert "scrypt" not in text and not any(token in text for token in credentials.tokens.values())


def test_failed_logins_are_rate_limited_per_address(credentials: Credentials, tmp_path: Path) -> None:
    with run_gateway(tmp_path / "gw", "--auth", "--backend-store-uri", credentials.store) as gw:
        url = f"{gw.url}/api/2.0/mlflow/experiments/search"
        statuses = [requests.get(url, headers=basic("writer", f"guess-{n}"), timeout=30).status_code for n in range(10)]
        assert statuses == [401] * 10
        limited = requests.get(url, headers=basic("writer"), timeout=10)  # even the right password waits
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert "Too many failed logins" in limited.json()["message"]
        assert sum(1 for line in gw.log_lines() if line.get("msg") == "login failed") == 10


def _login(gw: RunningGateway, headers: dict[str, str], source: str = "127.0.0.1") -> int:
    """One authenticated GET from `source` (any 127.x address reaches the loopback gateway)."""
    connection = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=60, source_address=(source, 0))
    try:
        connection.request("GET", "/api/2.0/mlflow/experiments/search?max_results=1", headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def _password_checks(gw: RunningGateway, token: str) -> dict[str, float]:
    text = requests.get(f"{gw.url}/metrics", headers=bearer(token), timeout=30).text
    found = re.findall(r'^artifact_gateway_password_checks_total\{outcome="(\w+)"\} (\S+)$', text, re.M)
    return {outcome: float(value) for outcome, value in found}


def test_a_burst_of_wrong_passwords_at_once_is_counted_before_it_is_checked(
    credentials: Credentials, tmp_path: Path
) -> None:
    """The reviewer's attack: 60 wrong passwords sent at once, with the right one among them. Failures
    were counted after the check, so all 61 were checked (limit 10) and the right one got in. Now an
    attempt counts before its check: at most 10 passwords are ever checked, then the right one waits."""
    with run_gateway(tmp_path / "gw", "--auth", "--backend-store-uri", credentials.store) as gw:
        guesses = [basic("writer", f"guess-{n}") for n in range(60)] + [basic("writer")]
        with concurrent.futures.ThreadPoolExecutor(len(guesses)) as pool:
            burst = list(pool.map(lambda headers: _login(gw, headers), guesses))
        assert set(burst) <= {200, 401, 429, 503}, burst
        checked = sum(1 for line in gw.log_lines() if line.get("msg") == "login failed")
        assert checked + burst.count(200) <= 10, f"{checked} wrong passwords checked at once: {burst}"
        sequential = [_login(gw, basic("writer", f"more-{n}")) for n in range(12)]
        checked = sum(1 for line in gw.log_lines() if line.get("msg") == "login failed")
        assert checked <= 10 and sequential[-2:] == [429, 429], sequential
        assert _login(gw, basic("writer")) == 429  # the right password too, until the minute is over


def test_a_login_flood_does_not_slow_file_transfers(credentials: Credentials, tmp_path: Path) -> None:
    """40 wrong passwords from 40 addresses made a token download of a 100-byte file take 7.4 s: the
    password hashes ran in the executor the file reads use. Hashing has its own pool now, and a worker
    admits only a few checks at once (503 beyond, which clients retry)."""
    token = credentials.tokens["reader"]
    with run_gateway(tmp_path / "gw", "--auth", "--backend-store-uri", credentials.store) as gw:
        small = gw.artifact_url("small.bin")
        assert requests.put(small, data=b"x" * 100, headers=bearer(credentials.tokens["writer"]), timeout=30).ok
        assert requests.get(small, headers=bearer(token), timeout=30).content == b"x" * 100  # token now cached
        with concurrent.futures.ThreadPoolExecutor(40) as pool:
            flood = [pool.submit(_login, gw, basic("writer", f"flood-{n}"), f"127.0.1.{n + 1}") for n in range(40)]
            time.sleep(0.2)  # the flood is being checked
            started = time.perf_counter()
            download = requests.get(small, headers=bearer(token), timeout=60)
            elapsed = time.perf_counter() - started
            statuses = [future.result() for future in flood]
        assert download.content == b"x" * 100
        assert elapsed < 1.5, f"a 100-byte download took {elapsed:.1f} s during a login flood"
        assert set(statuses) <= {401, 503} and statuses.count(401) >= 8, statuses


def test_one_password_spelled_many_ways_is_checked_once(credentials: Credentials, tmp_path: Path) -> None:
    """The cache was keyed on the raw header: 15 spacings and casings of one good password each cost
    a full scrypt. It is keyed on the parsed credential now."""
    encoded = base64.b64encode(f"writer:{PASSWORDS['writer']}".encode()).decode()
    variants = [
        f"{lead}{scheme}{gap}{encoded}{trail}"
        for scheme in ("Basic", "basic", "BASIC")
        for lead, gap, trail in (("", " ", ""), ("", "  ", ""), (" ", " ", ""), ("", " ", " "), ("", "   ", "  "))
    ]
    assert len(set(variants)) == 15
    with run_gateway(tmp_path / "gw", "--auth", "--backend-store-uri", credentials.store) as gw:
        assert [_login(gw, {"Authorization": variant}) for variant in variants] == [200] * 15
        assert _password_checks(gw, credentials.tokens["reader"]) == {"accepted": 1.0}


def test_behind_trusted_proxies_logins_are_limited_per_forwarded_client(
    credentials: Credentials, tmp_path: Path
) -> None:
    """With --trusted-proxies, X-Forwarded-For names the client (its rightmost untrusted entry); without
    it the header is ignored, so a client cannot dodge the limit by writing one."""

    def guess(gw: RunningGateway, forwarded: str, password: str | None = "wrong-password") -> int:
        headers = {**basic("reader", password), "X-Forwarded-For": forwarded}
        return requests.get(f"{gw.url}/api/2.0/mlflow/experiments/search", headers=headers, timeout=30).status_code

    proxied = ("--trusted-proxies", "127.0.0.0/8, 10.1.2.3")
    with run_gateway(tmp_path / "proxied", "--auth", "--backend-store-uri", credentials.store, *proxied) as gw:
        assert [guess(gw, f"198.51.100.{n}, 203.0.113.7, 10.1.2.3") for n in range(10)] == [401] * 10
        assert guess(gw, "203.0.113.7", None) == 429  # the same client, whatever it wrote to the left
        assert guess(gw, "203.0.113.8", None) == 200  # another client behind the same proxy
        failed = [line for line in gw.log_lines() if line.get("msg") == "login failed"]
        assert {line["remote"] for line in failed} == {"203.0.113.7"}
        search = gw.wait_for_log(msg="request", status=200, path="/api/2.0/mlflow/experiments/search")
        assert search[0]["remote"] == "203.0.113.8"
    with run_gateway(tmp_path / "direct", "--auth", "--backend-store-uri", credentials.store) as gw:
        assert [guess(gw, f"203.0.113.{n}") for n in range(10)] == [401] * 10
        assert guess(gw, "203.0.113.99", None) == 429


def test_a_revoked_or_expired_token_and_a_removed_user_stop_working(credentials: Credentials, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'own.db'}"
    add_user(store, "temp", "write", "temporary-pass-1")
    token = cli("tokens", "create", "--user", "temp", "--name", "t", store=store).stdout.strip()
    expiring = cli(
        "tokens", "create", "--user", "temp", "--name", "e", "--expires-days", "1", store=store
    ).stdout.strip()
    token_id = token.split("_")[1]
    with run_gateway(tmp_path / "gw", "--auth", "--backend-store-uri", store) as gw:
        url = f"{gw.url}/api/2.0/mlflow/experiments/search"
        assert requests.get(url, headers=bearer(token), timeout=10).status_code == 200
        listed = cli("tokens", "list", store=store).stdout
        assert token_id in listed and "temp" in listed and token not in listed
        assert cli("tokens", "revoke", token_id, store=store).returncode == 0
        assert cli("tokens", "revoke", token_id, store=store).returncode == 2
    # A fresh server (no cache) refuses what was revoked; the expired token is refused once past expiry.
    import sqlite3

    with sqlite3.connect(store.removeprefix("sqlite:///")) as db:
        db.execute(
            "UPDATE api_tokens SET expiry_time = ? WHERE name = 'e'", (int(datetime.datetime.now().timestamp()) - 1,)
        )
    with run_gateway(tmp_path / "gw2", "--auth", "--backend-store-uri", store) as gw:
        url = f"{gw.url}/api/2.0/mlflow/experiments/search"
        assert requests.get(url, headers=bearer(token), timeout=10).status_code == 401
        assert requests.get(url, headers=bearer(expiring), timeout=10).status_code == 401
        good = {"Authorization": "Basic " + base64.b64encode(b"temp:temporary-pass-1").decode()}
        assert requests.get(url, headers=good, timeout=10).status_code == 200
    assert cli("users", "remove", "temp", store=store).returncode == 0
    with run_gateway(tmp_path / "gw3", "--auth", "--backend-store-uri", store) as gw:
        good = {"Authorization": "Basic " + base64.b64encode(b"temp:temporary-pass-1").decode()}
        assert requests.get(f"{gw.url}/api/2.0/mlflow/experiments/search", headers=good, timeout=10).status_code == 401


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["users", "add", "x", "--permission", "read", "--password-stdin"], "short", "too short"),
        (["users", "add", "bad name!", "--permission", "read", "--password-stdin"], "long-enough-pass", "not a valid"),
        (["users", "add", "x", "--permission", "read"], "", "--password-stdin"),
        (["users", "set-permission", "nobody", "write"], "", "no user 'nobody'"),
        (["tokens", "create", "--user", "nobody", "--name", "n"], "", "no user 'nobody'"),
        (["tokens", "revoke", "deadbeef"], "", "no token 'deadbeef'"),
        (["users", "list", "--store", "postgresql://u:s3cret@127.0.0.1:1/db"], "", "'postgresql://u:***@127.0.0.1"),
    ],
)
def test_cli_refusals_are_one_clear_line(args: list[str], stdin: str, message: str, tmp_path: Path) -> None:
    if "--store" in args:  # an unreachable store: named without its password
        at = args.index("--store")
        store, args = args[at + 1], args[:at]
    else:
        store = f"sqlite:///{tmp_path / 'cli.db'}"
    result = cli(*args, stdin=stdin, store=store)
    assert "s3cret" not in result.stderr
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_token_never_exceeds_its_users_permission(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'p.db'}"
    add_user(store, "r", "read", "reader-pass-123")
    refused = cli("tokens", "create", "--user", "r", "--name", "x", "--permission", "write", store=store)
    assert refused.returncode == 2 and "cannot have write" in refused.stderr
    duplicate = cli(
        "users", "add", "r", "--permission", "read", "--password-stdin", stdin="reader-pass-123", store=store
    )
    assert duplicate.returncode == 2 and "already exists" in duplicate.stderr


def test_artifacts_only_with_auth_uses_the_store_for_users(credentials: Credentials, tmp_path: Path) -> None:
    with run_gateway(tmp_path / "gw", "--artifacts-only", "--auth", "--backend-store-uri", credentials.store) as gw:
        url = gw.artifact_url("a/b.txt")
        assert requests.put(url, data=b"x", timeout=10).status_code == 401
        assert requests.put(url, data=b"x", headers=basic("writer"), timeout=10).status_code == 200
        assert requests.get(url, headers=bearer(credentials.tokens["reader"]), timeout=10).content == b"x"


def test_artifacts_only_readiness_probes_the_users_database(postgres_dsn: str, tmp_path: Path) -> None:
    """Users live in a database this mode otherwise never touches: a pod that cannot reach it is not ready."""
    import asyncio

    import asyncpg

    name = f"ready{uuid.uuid4().hex[:10]}"
    store = create_database(postgres_dsn, name)
    add_user(store, "pg-user", "write", "pg-password-123")
    with run_gateway(tmp_path / "gw", "--artifacts-only", "--auth", "--backend-store-uri", store) as gw:
        ready = requests.get(f"{gw.url}/health/ready", timeout=30)
        assert (ready.status_code, ready.json()) == (200, {"status": "ok", "auth_database": "ok", "artifacts": "ok"})

        async def drop() -> None:
            connection = await asyncpg.connect(postgres_dsn)
            try:
                await connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')  # ends the gateway's sessions too
            finally:
                await connection.close()

        asyncio.run(drop())
        down = requests.get(f"{gw.url}/health/ready", timeout=30)
        assert down.status_code == 503
        assert down.json()["status"] == "unavailable"
        assert down.json() == {"status": "unavailable", "auth_database": "unavailable", "artifacts": "ok"}
        logged = gw.wait_for_log(msg="readiness check failed", check="auth_database")[0]
        assert name in str(logged["reason"])  # the reason goes to the log, never to the public answer


def test_readiness_probes_the_shared_database_once(secured: RunningGateway) -> None:
    ready = requests.get(f"{secured.url}/health/ready", timeout=30)
    assert (ready.status_code, ready.json()) == (200, {"status": "ok", "database": "ok", "artifacts": "ok"})


def test_start_warns_when_auth_is_on_without_users_or_off_beyond_loopback(tmp_path: Path) -> None:
    with run_gateway(tmp_path / "a", "--auth", "--backend-store-uri", f"sqlite:///{tmp_path / 'empty.db'}") as gw:
        assert requests.get(f"{gw.url}/health", timeout=10).status_code == 200  # the worker has started
        assert any("no user exists yet" in str(line.get("msg")) for line in gw.log_lines())
    with run_gateway(tmp_path / "b", "--host", "0.0.0.0") as gw:
        assert any("without authentication" in str(line.get("msg")) for line in gw.log_lines())


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_https_with_tls_cert_and_key(credentials: Credentials, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = _self_signed(tmp_path)
    with run_gateway(
        tmp_path / "gw",
        "--auth",
        "--backend-store-uri",
        credentials.store,
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
    ) as gw:
        base = f"https://localhost:{gw.port}"
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{base}/health", timeout=10)  # not trusted without the certificate
        url = f"{base}/api/2.0/mlflow-artifacts/artifacts/tls/x.txt"
        assert (
            requests.put(url, data=b"secret", headers=basic("writer"), verify=str(cert), timeout=10).status_code == 200
        )
        assert requests.get(url, headers=basic("reader"), verify=str(cert), timeout=10).content == b"secret"
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(f"http://127.0.0.1:{gw.port}/health", timeout=10)  # no plain HTTP on the TLS port
        for name in list(os.environ):
            if name.startswith("MLFLOW_"):
                monkeypatch.delenv(name)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", base)
        mlflow.set_tracking_uri(base)
        monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", str(cert))
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", credentials.tokens["writer"])
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        experiment = mlflow.create_experiment(f"tls-{uuid.uuid4().hex[:8]}")
        assert mlflow.get_experiment(experiment).name.startswith("tls-")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls-cert", "/nonexistent/cert.pem"], "needs both --tls-cert and --tls-key"),
        (["--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"], "cannot load --tls-cert"),
    ],
)
def test_bad_tls_settings_fail_at_start_in_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    result = run_cli("serve", "--port", "0", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    scheme=st.sampled_from(["Basic", "Bearer", "basic", "BEARER", "Token", ""]),
    value=st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=80)
    | st.binary(max_size=60).map(lambda raw: base64.b64encode(raw).decode()),
)
@example(scheme="Basic", value="\x80")  # once a 500: base64 of a non-ASCII string
@example(scheme="Bearer", value="\xff")
def test_any_authorization_header_is_401_never_500(secured: RunningGateway, scheme: str, value: str) -> None:
    status, _, body = secured.raw_request(
        "GET", "/api/2.0/mlflow/experiments/search", headers={"Authorization": f"{scheme} {value}"}
    )
    assert status in (400, 401), body  # 400: aiohttp refuses a header it cannot parse, before any handler


def test_users_and_tokens_on_postgresql(postgres_dsn: str, tmp_path: Path) -> None:
    store = create_database(postgres_dsn, f"auth{uuid.uuid4().hex[:10]}")
    add_user(store, "pg-user", "write", "pg-password-123")
    token = cli("tokens", "create", "--user", "pg-user", "--name", "pg", "--permission", "read", store=store)
    assert token.returncode == 0, token.stderr
    with run_gateway(tmp_path / "gw", "--auth", "--backend-store-uri", store) as gw:
        url = gw.artifact_url("pg/x.txt")
        good = {"Authorization": "Basic " + base64.b64encode(b"pg-user:pg-password-123").decode()}
        assert requests.put(url, data=b"pg", headers=good, timeout=10).status_code == 200
        assert requests.get(url, headers=bearer(token.stdout.strip()), timeout=10).content == b"pg"
        assert requests.put(url, data=b"no", headers=bearer(token.stdout.strip()), timeout=10).status_code == 403
        assert requests.get(url, timeout=10).status_code == 401
