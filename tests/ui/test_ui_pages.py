"""The UI's pages over HTTP: what each mode serves, forms and their guards, paging and sorting of many
runs, escaping, and a clear page (never a traceback) for every kind of bad input."""

from __future__ import annotations

import contextlib
import hashlib
import math
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from html import unescape
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
from aiohttp.test_utils import TestServer
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from sqlalchemy import event

from gateway.app import create_app
from gateway.http.app_keys import STORE_KEY
from gateway.server import open_destination
from gateway.settings import Settings
from gateway.store.database import create_engine, migrate
from gateway.tracking.store import MetricPoint, TrackingStore
from tests.cloud_backend import Backend
from tests.gateway_process import RunningGateway, run_gateway
from tests.postgres_server import create_database


@pytest.fixture(scope="module")
def many(gateway: RunningGateway) -> tuple[str, list[str]]:
    """An experiment with 250 runs: metric `score` = i, param `i` = i, tag `parity`."""
    client = MlflowClient(gateway.url)
    experiment_id = client.create_experiment(f"many-{uuid.uuid4().hex[:8]}")
    ids = []
    for i in range(250):
        run_id = client.create_run(experiment_id, run_name=f"run-{i:03d}", start_time=1_700_000_000_000 + i).info.run_id
        client.log_batch(run_id, metrics=[Metric("score", float(i), 0, 0)], params=[Param("i", str(i))])
        client.set_tag(run_id, "parity", "even" if i % 2 == 0 else "odd")
        ids.append(run_id)
    return experiment_id, ids


def get(gateway: RunningGateway, path: str, **kwargs: object) -> requests.Response:
    return requests.get(gateway.url + path, timeout=30, allow_redirects=False, **kwargs)  # type: ignore[arg-type]


def run_names(html: str) -> list[str]:
    return re.findall(r'<a class="clip" href="/experiments/\d+/runs/[0-9a-f]+" title="[^"]*">([^<]+)</a>', html)


def assert_clear_page(response: requests.Response, status: int, message: str) -> None:
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["Content-Type"].startswith("text/html")
    assert message in unescape(response.text), response.text[:2000]
    assert "Traceback" not in response.text


def test_runs_are_paged_sorted_filtered_and_counted(gateway: RunningGateway, many: tuple[str, list[str]]) -> None:
    experiment_id, _ = many
    first = get(gateway, f"/experiments/{experiment_id}")
    assert first.status_code == 200
    assert "Runs 1–100 of 250" in first.text
    assert run_names(first.text)[:2] == ["run-249", "run-248"]  # newest first
    started = re.search(r'<th[^>]*><a href="([^"]+)" title="[^"]*">Started</a>', first.text)
    assert started is not None and "start_time%60+ASC" in started.group(1)  # the header link reverses it
    oldest = get(gateway, unescape(started.group(1)))
    assert run_names(oldest.text)[:2] == ["run-000", "run-001"]
    second = get(gateway, f"/experiments/{experiment_id}", params={"page": 2})
    assert "Runs 101–200 of 250" in second.text and run_names(second.text)[0] == "run-149"
    by_score = get(gateway, f"/experiments/{experiment_id}", params={"order_by": "metrics.`score` ASC", "page": 3})
    assert "Runs 201–250 of 250" in by_score.text
    assert run_names(by_score.text) == [f"run-{i:03d}" for i in range(200, 250)]
    assert 'rel="next"' not in by_score.text
    filtered = get(
        gateway,
        f"/experiments/{experiment_id}",
        params={"filter": "metrics.score >= 240 and tags.parity = 'even'", "columns": ["tags.parity", "params.i"]},
    )
    assert "Runs 1–5 of 5" in filtered.text
    assert run_names(filtered.text) == ["run-248", "run-246", "run-244", "run-242", "run-240"]
    assert ">parity<" in filtered.text and ">score<" not in filtered.text  # the chosen columns only


def test_experiment_forms_create_rename_delete_restore(gateway: RunningGateway) -> None:
    name = f"made-in-ui-{uuid.uuid4().hex[:8]}"
    created = requests.post(f"{gateway.url}/experiments", data={"name": name}, timeout=10, allow_redirects=False)
    assert created.status_code == 303
    experiment_id = created.headers["Location"].rsplit("/", 1)[1]
    client = MlflowClient(gateway.url)
    assert client.get_experiment(experiment_id).name == name
    post = f"{gateway.url}/experiments/{experiment_id}"
    assert (
        requests.post(f"{post}/rename", data={"new_name": name + "-2"}, timeout=10, allow_redirects=False).status_code
        == 303
    )
    assert client.get_experiment(experiment_id).name == name + "-2"
    assert requests.post(f"{post}/delete", timeout=10, allow_redirects=False).status_code == 303
    assert client.get_experiment(experiment_id).lifecycle_stage == "deleted"
    assert name + "-2" in get(gateway, "/experiments", params={"view": "deleted", "q": name.upper()}).text
    assert requests.post(f"{post}/restore", timeout=10, allow_redirects=False).status_code == 303
    assert client.get_experiment(experiment_id).lifecycle_stage == "active"
    duplicate = requests.post(f"{gateway.url}/experiments", data={"name": name + "-2"}, timeout=10)
    assert_clear_page(duplicate, 400, f"Experiment(name={name}-2) already exists.")
    assert_clear_page(requests.post(f"{gateway.url}/experiments", data={}, timeout=10), 400, "Missing value")


def test_forms_from_another_site_are_refused_and_change_nothing(gateway: RunningGateway) -> None:
    name = f"csrf-{uuid.uuid4().hex[:8]}"
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        refused = requests.post(f"{gateway.url}/experiments", data={"name": name}, headers=headers, timeout=10)
        assert_clear_page(refused, 403, "Refused a form sent from")
    assert MlflowClient(gateway.url).get_experiment_by_name(name) is None
    same_site = {"Origin": gateway.url, "Sec-Fetch-Site": "same-origin"}
    accepted = requests.post(
        f"{gateway.url}/experiments", data={"name": name}, headers=same_site, timeout=10, allow_redirects=False
    )
    assert accepted.status_code == 303


def test_forms_through_a_proxy_that_ends_tls_are_accepted(gateway: RunningGateway) -> None:
    """Behind a TLS-ending proxy the browser says https:// while this server sees http://."""
    name = f"proxied-{uuid.uuid4().hex[:8]}"
    public = gateway.url.replace("http://", "https://")
    browser = {"Origin": public, "Sec-Fetch-Site": "same-origin"}  # the browser's own verdict is trusted
    accepted = requests.post(
        f"{gateway.url}/experiments", data={"name": name}, headers=browser, timeout=10, allow_redirects=False
    )
    assert accepted.status_code == 303
    old_browser = {"Origin": public}  # no Sec-Fetch-Site: judged by Origin, and told what to set
    refused = requests.post(f"{gateway.url}/experiments", data={"name": name + "-x"}, headers=old_browser, timeout=10)
    assert_clear_page(refused, 403, "--public-url")
    assert MlflowClient(gateway.url).get_experiment_by_name(name + "-x") is None


def test_pages_escape_what_users_logged(gateway: RunningGateway) -> None:
    client = MlflowClient(gateway.url)
    hostile = f"<script>alert('x')</script>{uuid.uuid4().hex[:6]}"
    experiment_id = client.create_experiment(hostile)
    run_id = client.create_run(experiment_id, run_name=hostile).info.run_id
    client.log_param(run_id, "p", "<img src=x onerror=alert(1)>")
    for path in ("/experiments", f"/experiments/{experiment_id}", f"/experiments/{experiment_id}/runs/{run_id}"):
        response = get(gateway, path)
        assert response.status_code == 200
        assert "<script>alert" not in response.text and "<img src=x" not in response.text
        assert "&lt;script&gt;" in response.text
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_every_page_answers_bad_input_with_a_clear_page(gateway: RunningGateway, many: tuple[str, list[str]]) -> None:
    experiment_id, ids = many
    run = f"/experiments/{experiment_id}/runs/{ids[0]}"
    cases = [
        ("/experiments/12345678", 404, "No Experiment with id=12345678 exists"),
        (
            "/experiments/not-a-number",
            400,
            "Invalid experiment ID 'not-a-number'. Experiment ID must be a valid integer.",
        ),
        ("/experiments?view=sideways", 400, "'view' must be one of active, deleted, all"),
        ("/experiments?page=0", 400, "'page' must be a whole number"),
        ("/experiments?page=%C2%B2", 400, "'page' must be a whole number"),  # '²' is a digit to str.isdigit
        ("/experiments?page=" + "9" * 5000, 400, "'page' must be a whole number"),  # too long for int()
        (f"/experiments/{experiment_id}?filter=metrics.score+%3E", 400, "the last comparison has no value"),
        (f"/experiments/{experiment_id}?filter=params.x+%3D+%27unclosed", 400, "Parameter value is either not quoted"),
        (f"/experiments/{experiment_id}?order_by=metrics.score+SIDEWAYS", 400, "Invalid ordering key"),
        (f"/experiments/{experiment_id}?columns=secrets.key", 400, "Invalid column 'secrets.key'"),
        (f"/experiments/{experiment_id}?max_results=100000", 400, "'max_results' must be a whole number"),
        (f"/experiments/{experiment_id}?page=abc", 400, "'page' must be a whole number"),
        (f"/experiments/{experiment_id}/runs/{'0' * 32}", 404, f"Run with id={'0' * 32} not found"),
        (f"/experiments/{experiment_id}/runs/{'0' * 32}/artifacts", 404, f"Run with id={'0' * 32} not found"),
        (f"{run}/artifacts/..%2F..%2F..%2Fetc%2Fpasswd", 400, "Invalid path"),
        (f"{run}/artifacts/a/%2e%2e/%2e%2e/b", 400, "Invalid path"),
        (f"{run}/artifacts/%ff", 400, "not UTF-8"),
        (f"{run}/artifacts/missing.txt", 404, "No artifact or folder 'missing.txt'"),
        ("/browse/..%2Fsecret", 400, "Invalid path"),
        ("/browse/%2e%2e/%2e%2e/etc", 400, "Invalid path"),
        ("/browse/nothing/here", 404, "No artifact or folder 'nothing/here'"),
        ("/compare-runs", 400, "Choose from 2 to 10 runs"),
        (
            "/compare-runs?" + "&".join(f"runs={i}" for i in ids[:11]),
            400,
            "Choose from 2 to 10 runs to compare (got 11)",
        ),
        (f"/compare-runs?runs={ids[0]}&runs={'0' * 32}", 404, f"Run with id={'0' * 32} not found"),
        ("/experiments?q=%ff", 400, "not UTF-8"),
    ]
    for path, status, message in cases:
        assert_clear_page(get(gateway, path), status, message)
    # A run reached through another experiment's URL is shown at its own address.
    moved = get(gateway, f"/experiments/0/runs/{ids[0]}")
    assert (moved.status_code, moved.headers["Location"]) == (302, run)


def test_ui_static_files_are_only_the_ui_s_own(gateway: RunningGateway) -> None:
    script = get(gateway, "/ui-static/ui.js")
    assert (script.status_code, script.headers["Content-Type"]) == (200, "text/javascript")
    assert get(gateway, "/ui-static/uPlot.LICENSE").text.startswith("The MIT License")
    for probe in ("/ui-static/..%2F__init__.py", "/ui-static/%2e%2e", "/ui-static/rendering.py", "/ui-static/"):
        assert get(gateway, probe).status_code == 404, probe


@pytest.mark.parametrize("mode", ["artifacts-only", "no-proxy", "no-ui"])
def test_each_mode_serves_its_pages(mode: str, tmp_path: Path) -> None:
    args = {
        "artifacts-only": ["--artifacts-only"],
        "no-proxy": ["--no-serve-artifacts", "--default-artifact-root", "s3://bucket/root"],
        "no-ui": ["--no-ui"],
    }[mode]
    with run_gateway(tmp_path, *args) as gateway:
        if mode == "artifacts-only":
            requests.put(gateway.artifact_url("team/model/weights.bin"), data=b"w" * 10, timeout=10).raise_for_status()
        home = get(gateway, "/")
        if mode == "artifacts-only":
            assert home.status_code == 200 and 'href="/browse/team"' in home.text
            file_page = get(gateway, "/browse/team/model/weights.bin")
            assert (
                "10 bytes" in file_page.text
                and "/api/2.0/mlflow-artifacts/artifacts/team/model/weights.bin" in file_page.text
            )
            assert get(gateway, "/experiments").status_code == 404
        elif mode == "no-proxy":
            client = MlflowClient(gateway.url)
            experiment_id = client.create_experiment(f"direct-{uuid.uuid4().hex[:6]}")
            run_id = client.create_run(experiment_id).info.run_id
            assert home.status_code == 200
            run_page = get(gateway, f"/experiments/{experiment_id}/runs/{run_id}")
            assert "This server does not store this run's artifacts" in unescape(run_page.text)
            assert f"s3://bucket/root/{experiment_id}/{run_id}/artifacts" in run_page.text
            artifacts = get(gateway, f"/experiments/{experiment_id}/runs/{run_id}/artifacts")
            assert_clear_page(artifacts, 501, "This server does not serve artifacts stored at 's3://bucket/root/")
            model_id = client.create_logged_model(experiment_id, source_run_id=run_id).model_id
            model_page = get(gateway, f"/logged-models/{model_id}")
            assert "This server does not store this model's files" in unescape(model_page.text)
            model_files = get(gateway, f"/logged-models/{model_id}/artifacts")
            assert_clear_page(model_files, 501, "This server does not serve artifacts stored at 's3://bucket/root/")
            assert get(gateway, "/browse").status_code == 404
        else:
            assert home.status_code == 404 and get(gateway, "/experiments").status_code == 404
            assert get(gateway, "/api/2.0/mlflow/experiments/search").status_code == 200


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    with run_gateway(tmp_path_factory.mktemp("ui-pages")) as running:
        yield running


def test_times_beyond_the_calendar_still_render(gateway: RunningGateway) -> None:
    client = MlflowClient(gateway.url)
    experiment_id = client.create_experiment(f"far-future-{uuid.uuid4().hex[:6]}")
    run_id = client.create_run(experiment_id, start_time=2**62).info.run_id
    for path in (f"/experiments/{experiment_id}", f"/experiments/{experiment_id}/runs/{run_id}"):
        response = get(gateway, path)
        assert response.status_code == 200 and f"{2**62} ms" in response.text


def test_metric_history_bulk_as_mlflow_s_ui_route(gateway: RunningGateway) -> None:
    """`/ajax-api/2.0/mlflow/metrics/get-history-bulk`: runs in id order, each run's points by time."""
    client = MlflowClient(gateway.url)
    experiment_id = client.create_experiment(f"bulk-{uuid.uuid4().hex[:6]}")
    ids = sorted(client.create_run(experiment_id).info.run_id for _ in range(3))
    for n, run_id in enumerate(ids):
        # logged out of time order: the answer sorts by (timestamp, step, value)
        points = [Metric("loss", float(10 * n + step), 1000 * (5 - step), step) for step in range(5)]
        client.log_batch(run_id, metrics=points)
    url = f"{gateway.url}/ajax-api/2.0/mlflow/metrics/get-history-bulk"
    answer = requests.get(url, params={"run_id": list(reversed(ids)), "metric_key": "loss"}, timeout=10).json()
    expected = [
        {"key": "loss", "value": float(10 * n + step), "timestamp": 1000 * (5 - step), "step": step, "run_id": run_id}
        for n, run_id in enumerate(ids)
        for step in reversed(range(5))
    ]
    assert answer == {"metrics": expected}
    capped = requests.get(url, params={"run_id": ids, "metric_key": "loss", "max_results": 7}, timeout=10).json()
    assert capped == {"metrics": expected[:7]}
    none = requests.get(url, params={"run_id": ids[0], "metric_key": "absent"}, timeout=10).json()
    assert none == {"metrics": []}
    unknown = requests.get(url, params={"run_id": "0" * 32, "metric_key": "loss"}, timeout=10).json()
    assert unknown == {"metrics": []}  # as MLflow answers a run that does not exist
    for params, message in (
        ({"metric_key": "loss"}, "must specify at least one run_id"),
        ({"run_id": ids[0]}, "must specify a metric_key"),
        ({"run_id": [ids[0]] * 101, "metric_key": "loss"}, "cannot specify more than 100 run_ids"),
        (
            {"run_id": ids[0], "metric_key": "loss", "max_results": "many"},
            "Invalid value \"many\" for parameter 'max_results'",
        ),
    ):
        refused = requests.get(url, params=params, timeout=10)
        assert refused.status_code in (400, 404) and message in refused.json()["message"], (params, refused.text)
    assert requests.get(url.replace("/ajax-api/", "/api/"), params={"run_id": ids[0]}, timeout=10).status_code == 404


@pytest.mark.parametrize("kind", ["s3", "azure"])
def test_artifact_browser_on_cloud_storage(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """The browser lists, describes (size, SHA-256) and previews objects in S3 and Azure as on local disk.

    With --artifacts-redirect, downloads are 307s to the bucket, but an image preview streams from the
    page's own origin (its Content-Security-Policy allows no other)."""
    backend = Backend(kind, request)
    flags = ("--artifacts-only", "--artifacts-redirect")
    with run_gateway(tmp_path, *flags, env=backend.env, destination=backend.uri) as gateway:
        png = b"\x89PNG\r\n\x1a\n" + uuid.uuid4().bytes * 4
        files = {
            "team/model/MLmodel": b"flavors: {}\n",
            "team/model/metrics.csv": b"step,loss\n0,1.5\n",
            "team/plot.png": png,
        }
        for name, data in files.items():
            requests.put(gateway.artifact_url(name), data=data, timeout=30).raise_for_status()
        folder = get(gateway, "/browse/team/model")
        assert folder.status_code == 200
        assert re.findall(r'<td><a href="/browse/team/model/([^"]+)">', folder.text) == ["MLmodel", "metrics.csv"]
        assert "/api/2.0/mlflow-artifacts/archive/team/model?format=zip" in folder.text
        page = get(gateway, "/browse/team/model/metrics.csv")
        assert hashlib.sha256(files["team/model/metrics.csv"]).hexdigest() in page.text
        assert "<th>step</th><th>loss</th>" in page.text and "<td>1.5</td>" in page.text
        assert_clear_page(get(gateway, "/browse/team/nothing"), 404, "No artifact or folder 'team/nothing'")
        image_page = get(gateway, "/browse/team/plot.png")
        assert '<img src="/browse/team/plot.png?raw=1"' in image_page.text
        redirected = requests.get(gateway.artifact_url("team/plot.png"), timeout=30, allow_redirects=False)
        assert redirected.status_code == 307
        raw = get(gateway, "/browse/team/plot.png", params={"raw": "1"})
        assert raw.status_code == 200 and raw.content == png and raw.headers["Content-Type"] == "image/png"


def test_run_page_shows_dataset_inputs_even_with_odd_tags(gateway: RunningGateway) -> None:
    client = MlflowClient(gateway.url)
    experiment_id = client.create_experiment(f"inputs-{uuid.uuid4().hex[:6]}")
    run_id = client.create_run(experiment_id).info.run_id
    dataset = {"name": "train-set", "digest": "abc123", "source_type": "local", "source": "{}"}
    logged = requests.post(
        f"{gateway.url}/api/2.0/mlflow/runs/log-inputs",
        json={
            "run_id": run_id,
            "datasets": [{"dataset": dataset, "tags": [{"key": "context", "value": "training"}, {"key": "no-value"}]}],
        },
        timeout=10,
    )
    assert logged.status_code == 200, logged.text
    page = get(gateway, f"/experiments/{experiment_id}/runs/{run_id}")
    assert page.status_code == 200
    assert (
        "<td>train-set</td><td><code>abc123</code></td><td>local</td><td>context=training, no-value=</td>" in page.text
    )


def test_a_browser_gets_a_page_for_an_unknown_address_and_api_clients_json(gateway: RunningGateway) -> None:
    html = {"Accept": "text/html,application/xhtml+xml"}
    assert_clear_page(get(gateway, "/no-such-page", headers=html), 404, "There is no page at /no-such-page")
    for path, headers in (("/no-such-page", {}), ("/api/2.0/mlflow/no-such-route", html)):
        answer = get(gateway, path, headers=headers)
        assert (answer.status_code, answer.json()["error_code"]) == (404, "ENDPOINT_NOT_FOUND")


def tree_levels(html: str) -> list[list[tuple[str, str, str]]]:
    """The artifact tree of a page: per level, (name, li class, href) of each item, in page order."""
    tree = html.split('<aside class="tree"', 1)[1].split("</aside>", 1)[0]
    levels: list[list[tuple[str, str, str]]] = []
    depth = -1
    for tag, classes, href, name in re.findall(
        r'(<ul class="tree-level"|</ul>|<li class="([^"]+)"><a href="([^"]+)"[^>]*>([^<]+)</a>)', tree
    ):
        if tag.startswith("<ul"):
            depth += 1
            if depth == len(levels):
                levels.append([])
        elif tag == "</ul>":
            depth -= 1
        else:
            levels[depth].append((name, classes, href))
    return levels


def nested_under(html: str, folder: str) -> list[str]:
    """The names the tree draws inside `folder`'s item (its own children, not its later siblings)."""
    tree = html.split('<aside class="tree"', 1)[1].split("</aside>", 1)[0]
    start = tree.index(f">{folder}</a>")
    inside, depth = [], 0
    for match in re.finditer(r'<ul class="tree-level"|</ul>|<a href="[^"]+"[^>]*>([^<]+)</a>', tree[start:]):
        if match.group(0).startswith("<ul"):
            depth += 1
        elif match.group(0) == "</ul>":
            depth -= 1
            if depth <= 0:
                break
        elif depth > 0:
            inside.append(match.group(1))
    return inside


async def test_the_artifact_tree_lists_each_folder_once_and_all_at_once(tmp_path: Path) -> None:
    """A page shows the open branch of the tree from one listing per folder (the open folder's page
    listing serves its tree level), all in flight together: on S3 one round trip, not one per level."""
    import asyncio

    from aiohttp.test_utils import TestClient, TestServer

    from gateway.app import create_app
    from gateway.settings import Settings
    from gateway.ui.artifact_pages import LISTINGS_AT_ONCE
    from repositories import ArtifactPath, ListEntry
    from repositories.local import LocalRepository

    class CountingRepository(LocalRepository):
        listed: list[tuple[str, str | None]]
        waiting = peak = 0

        async def list(self, path: ArtifactPath, *, start_after: str | None = None) -> AsyncIterator[ListEntry]:
            self.listed.append((str(path), start_after))
            self.waiting += 1
            self.peak = max(self.peak, self.waiting)
            await asyncio.sleep(0.05)  # a storage round trip: the other listings start meanwhile
            self.waiting -= 1
            async for entry in super().list(path, start_after=start_after):
                yield entry

    for name in ("a/b/c/deep.txt", "a/b/other.txt", "a/top.txt", "root.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    repository = CountingRepository.open(tmp_path)
    settings = Settings(artifacts_destination=str(tmp_path), artifacts_only=True)
    branch = [
        [("a", "dir open", "/browse/a"), ("root.txt", "file", "/browse/root.txt")],
        [("b", "dir open", "/browse/a/b"), ("top.txt", "file", "/browse/a/top.txt")],
        [("c", "dir open", "/browse/a/b/c"), ("other.txt", "file", "/browse/a/b/other.txt")],
        [("deep.txt", "file", "/browse/a/b/c/deep.txt")],
    ]
    async with TestClient(TestServer(create_app(settings, repository, b"k" * 32))) as client:
        for url, tree, listed in (
            ("/browse/a/b/c", branch, [("", None), ("a", None), ("a/b", None), ("a/b/c", None)]),
            (
                "/browse/a/b/c/deep.txt",  # a file: the levels down to its folder, the file not marked open
                branch,
                [("", None), ("a", None), ("a/b", None), ("a/b/c", None), ("a/b/c/deep.txt", None)],
            ),
            (
                "/browse/a/b?after=c/",  # a later page: the tree still shows the folder from its start
                [*branch[:2], [("c", "dir", "/browse/a/b/c"), branch[2][1]]],
                [("", None), ("a", None), ("a/b", None), ("a/b", "c/")],
            ),
        ):
            repository.listed, repository.peak = [], 0
            response = await client.get(url)
            assert response.status == 200, await response.text()
            assert tree_levels(await response.text()) == tree, url
            under_b = ["c", "other.txt"] if "after" in url else ["c", "deep.txt", "other.txt"]
            assert nested_under(await response.text(), "b") == under_b, url  # drawn under b, before top.txt
            assert sorted(repository.listed, key=lambda listing: (listing[0], listing[1] or "")) == listed, url
            assert repository.peak == len(listed), url

        deep = "/".join(f"l{n}" for n in range(1, 11))  # 11 folders to list: at most LISTINGS_AT_ONCE at a time
        (tmp_path / deep).mkdir(parents=True)
        (tmp_path / deep / "f.txt").write_bytes(b"x")
        repository.listed, repository.peak = [], 0
        response = await client.get(f"/browse/{deep}")
        assert response.status == 200, await response.text()
        assert len(repository.listed) == 11 and repository.peak == LISTINGS_AT_ONCE == 8


async def test_a_folder_cut_at_its_limit_closes_its_listing(tmp_path: Path) -> None:
    """Pages list at most so many entries per folder; the rest of the listing is closed, not left to
    the garbage collector (which closes it soon, so only a direct call can tell)."""
    from gateway.ui.artifact_pages import _children
    from repositories import ArtifactPath
    from tests.listings import CountingListings

    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / name).write_bytes(b"x")
    repository = CountingListings.open(tmp_path)
    entries = await _children(repository, ArtifactPath.parse(""), None, 2)
    assert [entry.name for entry in entries] == ["a.txt", "b.txt"]
    assert repository.unfinished == 0


@pytest.fixture(params=["sqlite", "postgresql"])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mlruns.db'}"
    return create_database(request.getfixturevalue("postgres_dsn"), f"ui{uuid.uuid4().hex[:12]}")


@contextlib.asynccontextmanager
async def served_store(
    store_uri: str, tmp_path: Path
) -> AsyncIterator[tuple[TestServer, aiohttp.ClientSession, TrackingStore]]:
    """An in-process gateway on a freshly migrated `store_uri`: its test server, a client session, its store."""
    engine = create_engine(store_uri)
    await migrate(engine)
    await engine.dispose()
    settings = Settings(artifacts_destination=str(tmp_path / "mlartifacts"), backend_store_uri=store_uri)
    app = create_app(settings, open_destination(settings), b"k" * 32)
    async with TestServer(app) as server, aiohttp.ClientSession() as session:
        yield server, session, app[STORE_KEY]


async def test_runs_page_reads_the_experiment_once_and_counts_only_when_it_must(store_uri: str, tmp_path: Path) -> None:
    """A last page's total is its offset plus its runs; a page with more after it, or past the end, is counted."""
    async with served_store(store_uri, tmp_path) as (server, session, store):
        experiment_id = await store.create_experiment("five-runs", None, [])
        empty_id = await store.create_experiment("no-runs", None, [])
        for i in range(5):
            await store.create_run(experiment_id, "", 1_700_000_000_000 + i, f"run-{i}", [])
        statements: list[str] = []
        event.listen(store.engine.sync_engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

        async def show(experiment: str, **params: int) -> tuple[str, int]:
            """The page's run count line, and how many count queries answering it took."""
            statements.clear()
            async with session.get(server.make_url(f"/experiments/{experiment}"), params=params) as response:
                assert response.status == 200
                html = await response.text()
            assert sum("FROM experiments" in sql for sql in statements) == 1, statements
            shown = re.search(r"Runs \d+–\d+ of \d+|Page \d+ is past the last of the \d+ runs|No runs", html)
            assert shown is not None
            return shown.group(), sum("count(*)" in sql.lower() for sql in statements)

        assert await show(experiment_id, max_results=2) == ("Runs 1–2 of 5", 1)
        assert await show(experiment_id, max_results=2, page=3) == ("Runs 5–5 of 5", 0)
        assert await show(experiment_id, max_results=5) == ("Runs 1–5 of 5", 0)
        # past the end: nothing to go by, so counted (it used to read "Runs 7–6 of 5")
        assert await show(experiment_id, max_results=2, page=4) == ("Page 4 is past the last of the 5 runs", 1)
        assert await show(empty_id) == ("No runs", 0)


async def test_metric_history_bulk_reads_many_runs_in_one_metrics_query(store_uri: str, tmp_path: Path) -> None:
    """get-history-bulk on each database: runs in id order (repeats kept), each run's points by (timestamp, step,
    value) with NaN ranked as its stored 0 (as MLflow's SQL store ranks it), at most max_results in all; an unknown
    run is an error only if reached before the cap. However many runs, one query over `metrics`."""
    async with served_store(store_uri, tmp_path) as (server, session, store):
        experiment_id = await store.create_experiment("bulk", None, [])
        ids = sorted([(await store.create_run(experiment_id, "", 0, f"r{i}", []))["info"]["run_id"] for i in range(4)])
        nan, inf = math.nan, math.inf
        logged = {  # (value, timestamp, step), logged out of order; ids[2] has no `loss`
            ids[0]: [(3.0, 300, 0), (1.0, 100, 2), (nan, 200, 1), (inf, 50, 3)],
            ids[1]: [(5.0, 10, 1), (-inf, 20, 0)],
            ids[3]: [(9.0, 1, 2), (7.0, 1, 1), (nan, 1, 1), (-2.0, 1, 1)],
        }
        for run_id, points in logged.items():
            metrics = [MetricPoint("loss", value, timestamp, step) for value, timestamp, step in points]
            await store.log_batch(run_id, [*metrics, MetricPoint("acc", 0.5, 0, 0)], [], [])

        def point(run_id: str, value: float | str, timestamp: int, step: int) -> dict[str, object]:
            return {"key": "loss", "value": value, "timestamp": timestamp, "step": step, "run_id": run_id}

        first = [point(ids[0], *p) for p in [("Infinity", 50, 3), (1.0, 100, 2), ("NaN", 200, 1), (3.0, 300, 0)]]
        second = [point(ids[1], *p) for p in [(5.0, 10, 1), ("-Infinity", 20, 0)]]
        fourth = [point(ids[3], *p) for p in [(-2.0, 1, 1), ("NaN", 1, 1), (7.0, 1, 1), (9.0, 1, 2)]]
        statements: list[str] = []
        event.listen(store.engine.sync_engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

        async def bulk(run_ids: list[str], metric_key: str = "loss", max_results: int = 25_000) -> tuple[int, Any]:
            statements.clear()
            url = server.make_url("/ajax-api/2.0/mlflow/metrics/get-history-bulk")
            query = [("run_id", run_id) for run_id in run_ids] + [("metric_key", metric_key)]
            async with session.get(url, params=[*query, ("max_results", str(max_results))]) as response:
                return response.status, await response.json()

        assert await bulk(ids[::-1]) == (200, {"metrics": first + second + fourth})
        assert len(statements) == 2 and sum("FROM metrics" in sql for sql in statements) == 1, statements
        for cap in range(1, 11):
            assert await bulk(ids, max_results=cap) == (200, {"metrics": (first + second + fourth)[:cap]}), cap
        assert await bulk([ids[1], ids[0], ids[1]]) == (200, {"metrics": first + second + second})
        assert await bulk([ids[1], ids[1]], max_results=3) == (200, {"metrics": second + second[:1]})
        unknown = "f" * 32  # a run that does not exist has no points, as MLflow answers it
        assert await bulk([ids[0], unknown]) == (200, {"metrics": first})
        assert await bulk([unknown]) == (200, {"metrics": []})
        status, answer = await bulk([ids[0]], metric_key="")
        assert status == 400 and "'metric_key'" in answer["message"], answer

        many = [(await store.create_run(experiment_id, "", 0, f"m{i}", []))["info"]["run_id"] for i in range(40)]
        for n, run_id in enumerate(many):
            batch = [MetricPoint("loss", float(n), 100 - step, step) for step in range(3)]
            await store.log_batch(run_id, batch, [], [])
        status, answer = await bulk(many)
        assert status == 200 and len(answer["metrics"]) == 120
        assert [p["run_id"] for p in answer["metrics"][::3]] == sorted(many)
        assert [p["timestamp"] for p in answer["metrics"][:3]] == [98, 99, 100]
        assert sum("FROM metrics" in sql for sql in statements) == 1 and len(statements) == 2, statements
