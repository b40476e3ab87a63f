"""The web UI end to end in headless Chromium (Debian's package, driven by Playwright), on runs the stock
mlflow client logged: experiments, a filtered run table, a run's metric charts, a comparison, the
artifact browser, a preview and downloads of a file and a folder archive. A screenshot of every page
lands in tests/output/screenshots/ (docs/ui/ keeps one committed set).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import struct
import tarfile
import zipfile
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from playwright.async_api import Browser, Page, async_playwright

from tests.gateway_process import RunningGateway, run_cli, run_gateway

SCREENSHOTS = Path(__file__).parent.parent / "output" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STEPS = 12


def chromium_path() -> str:
    """Debian's chromium; the suite installs it (./dev test) and never downloads a browser of its own."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "chromium is not installed (apt-get install chromium; ./dev test installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def png(width: int, height: int) -> bytes:
    """A real PNG image (a gradient), built by hand so the test needs no imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(
        b"\x00" + bytes(channel for x in range(width) for channel in (x * 255 // width, y * 255 // height, 128))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


ARTIFACTS = {
    "notes.txt": b"First line of the notes.\nSecond line: <script>alert(1)</script> stays text.\n",
    "config.json": b'{"layers": [64, 32], "dropout": 0.1}',
    "table.csv": b"epoch,loss\n1,0.9\n2,0.5\n",
    "plot.png": png(64, 40),
    "model/MLmodel": b"artifact_path: model\nflavors:\n  python_function: {}\n",
    "model/weights.bin": os.urandom(300_000),
    "model/sub/extra.yaml": b"key: value\n",
}


@dataclass
class Logged:
    gateway: RunningGateway
    experiment_id: str
    runs: dict[str, str]  # run name -> run id
    loss: dict[str, list[tuple[int, float]]]  # run name -> (step, value)


def loss_curve(scale: float) -> list[tuple[int, float]]:
    return [(step, round(scale / (step + 1), 6)) for step in range(STEPS)]


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Logged]:
    """A gateway with three runs logged by the stock mlflow client, one of them with artifacts."""
    with run_gateway(tmp_path_factory.mktemp("ui")) as gateway, pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", gateway.url)
        client = MlflowClient(gateway.url)
        experiment_id = client.create_experiment("ui-e2e")
        runs: dict[str, str] = {}
        loss: dict[str, list[tuple[int, float]]] = {}
        for name, lr, model, scale, accuracy in (
            ("alpha", "0.1", "cnn", 1.0, 0.93),
            ("beta", "0.01", "cnn", 2.0, 0.88),
            ("gamma", "0.1", "mlp", 3.0, 0.61),
        ):
            run = client.create_run(experiment_id, run_name=name)
            run_id = run.info.run_id
            loss[name] = loss_curve(scale)
            stamp = 1_700_000_000_000
            metrics = [Metric("loss", value, stamp + step * 1000, step) for step, value in loss[name]]
            metrics.append(Metric("accuracy", accuracy, stamp, STEPS))
            client.log_batch(run_id, metrics=metrics, params=[Param("lr", lr), Param("model", model)])
            client.set_tag(run_id, "team", "vision")
            client.set_terminated(run_id)
            runs[name] = run_id
        source = tmp_path_factory.mktemp("artifacts")
        for name, data in ARTIFACTS.items():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes(data)
        client.log_artifacts(runs["alpha"], str(source))
        yield Logged(gateway, experiment_id, runs, loss)
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
def console_errors() -> list[str]:
    """What the page reported as errors (script errors, failed loads); the `page` fixture fails on any."""
    return []


@pytest.fixture
async def page(browser: Browser, console_errors: list[str]) -> AsyncIterator[Page]:
    context = await browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    opened = await context.new_page()
    opened.on("pageerror", lambda error: console_errors.append(str(error)))
    opened.on(
        "console",
        lambda message: (
            console_errors.append(f"{message.text} ({message.location.get('url')})")
            if message.type == "error"
            else None
        ),
    )
    yield opened
    await context.close()
    assert console_errors == [], f"the page reported errors: {console_errors}"


async def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def run_names_in_table(page: Page) -> list[str]:
    return [text.strip() for text in await page.locator("#runs tbody tr td:nth-child(2)").all_inner_texts()]


def history_query(url: str) -> tuple[str, str, list[str]]:
    """A metric history request's route, metric and (sorted) run ids."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    return parts.path.rsplit("/", 1)[-1], query["metric_key"][0], sorted(query["run_id"])


async def test_experiments_filter_run_charts_and_compare(logged: Logged, page: Page) -> None:
    await page.goto(logged.gateway.url + "/")
    await screenshot(page, "1-experiments")
    await page.get_by_role("link", name="ui-e2e").click()
    assert sorted(await run_names_in_table(page)) == ["alpha", "beta", "gamma"]

    await page.fill("#filter", "metrics.accuracy > 0.8")
    await page.get_by_role("button", name="Search").click()
    assert sorted(await run_names_in_table(page)) == ["alpha", "beta"]
    assert "filter=metrics.accuracy" in page.url  # the filtered view is a link that can be shared
    await screenshot(page, "2-runs-filtered")

    await page.get_by_role("link", name="alpha").click()
    await page.wait_for_selector("body[data-charts-ready=true]")
    await screenshot(page, "3-run")
    drawn = await page.evaluate("window.gatewayCharts.loss.tables[0]")
    assert drawn == [[step for step, _ in logged.loss["alpha"]], [value for _, value in logged.loss["alpha"]]]
    painted = await page.evaluate(
        """() => {
          const canvas = document.querySelector('figure.chart[data-metric="loss"] canvas');
          const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
          let inked = 0;
          for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) inked++;
          return inked;
        }"""
    )
    assert painted > 200, "the loss chart's canvas has (almost) nothing drawn on it"
    assert await page.locator("#params").inner_text() == "Name\tValue\nlr\t0.1\nmodel\tcnn"

    await page.go_back()
    await page.check(f"input[value='{logged.runs['alpha']}']")
    await page.check(f"input[value='{logged.runs['beta']}']")
    history_requests: list[str] = []
    page.on("request", lambda request: history_requests.append(request.url) if "/get-history" in request.url else None)
    await page.click("#compare-button")
    await page.wait_for_selector("body[data-charts-ready=true]")
    # one get-history-bulk request per metric, for both runs
    metrics = await page.locator("figure.chart").evaluate_all("figures => figures.map((f) => f.dataset.metric)")
    both = sorted([logged.runs["alpha"], logged.runs["beta"]])
    assert sorted(metrics) == ["accuracy", "loss"]
    assert sorted(map(history_query, history_requests)) == [("get-history-bulk", key, both) for key in sorted(metrics)]
    await screenshot(page, "4-compare")
    differing = await page.locator("#param-diff tr.differs td:first-child").all_inner_texts()
    same = await page.locator("#param-diff tr.same td:first-child").all_inner_texts()
    assert (differing, same) == (["lr"], ["model"])
    overlaid = await page.evaluate("window.gatewayCharts.loss")
    assert sorted(overlaid["runs"]) == sorted([logged.runs["alpha"], logged.runs["beta"]])
    names = {run_id: name for name, run_id in logged.runs.items()}
    for run_id, table in zip(overlaid["runs"], overlaid["tables"], strict=True):
        curve = logged.loss[names[run_id]]
        assert table == [[step for step, _ in curve], [value for _, value in curve]]


async def test_charts_read_a_full_bulk_answer_again_page_by_page(logged: Logged, page: Page) -> None:
    """A get-history-bulk answer holding its 25,000-point cap may be cut short: the chart then reads
    each run's history through paged get-history, so no point is lost."""
    alpha, beta = logged.runs["alpha"], logged.runs["beta"]
    cut = [{"key": "loss", "value": 0.0, "timestamp": 0, "step": 0, "run_id": alpha}] * 25_000
    await page.route(re.compile(r"/metrics/get-history-bulk\?"), lambda route: route.fulfill(json={"metrics": cut}))
    paged: list[str] = []
    page.on("request", lambda request: paged.append(request.url) if "/get-history?" in request.url else None)
    await page.goto(f"{logged.gateway.url}/compare-runs?runs={alpha}&runs={beta}")
    await page.wait_for_selector("body[data-charts-ready=true]")
    overlaid = await page.evaluate("window.gatewayCharts.loss")
    names = {run_id: name for name, run_id in logged.runs.items()}
    for run_id, table in zip(overlaid["runs"], overlaid["tables"], strict=True):
        assert table == [[step for step, _ in logged.loss[names[run_id]]], [v for _, v in logged.loss[names[run_id]]]]
    expected = [("get-history", key, [run]) for key in ("accuracy", "loss") for run in sorted([alpha, beta])]
    assert sorted(map(history_query, paged)) == expected


async def test_a_chart_of_200000_points_draws(logged: Logged, page: Page) -> None:
    """`Math.min(...points)` and `push(...points)` pass one argument per point: with 200,000 points the
    call stack overflowed and the chart said it could not load the metric."""
    alpha = logged.runs["alpha"]
    many = [
        {"key": "loss", "value": (n % 97) / 97, "timestamp": 10_000 + n, "step": n, "run_id": alpha}
        for n in range(200_000)
    ]
    await page.route(
        re.compile(r"/metrics/get-history-bulk\?.*metric_key=loss"), lambda route: route.fulfill(json={"metrics": many})
    )
    await page.route(
        re.compile(r"/metrics/get-history\?.*metric_key=loss"), lambda route: route.fulfill(json={"metrics": many})
    )
    await page.goto(f"{logged.gateway.url}/experiments/{logged.experiment_id}/runs/{alpha}")
    await page.wait_for_selector("body[data-charts-ready=true]")
    assert await page.locator('figure.chart[data-metric="loss"].failed').count() == 0
    assert await page.locator('figure.chart[data-metric="loss"] .chart-note').text_content() == "200000 points"
    table = await page.evaluate(
        "[window.gatewayCharts.loss.tables[0][0].length, window.gatewayCharts.loss.tables[0][0][0]]"
    )
    assert table == [200_000, 0]


async def test_mlflow_client_links_open_the_run_page(logged: Logged, page: Page) -> None:
    """The client prints `<server>/#/experiments/<id>/runs/<run id>`; it must land on that run here."""
    run_id = logged.runs["gamma"]
    await page.goto(f"{logged.gateway.url}/#/experiments/{logged.experiment_id}/runs/{run_id}")
    await page.wait_for_url(f"**/experiments/{logged.experiment_id}/runs/{run_id}")
    assert await page.locator("h1").first.inner_text() == "gamma FINISHED"


async def test_browse_preview_and_download_artifacts(logged: Logged, page: Page, tmp_path: Path) -> None:
    base = f"{logged.gateway.url}/experiments/{logged.experiment_id}/runs/{logged.runs['alpha']}"
    await page.goto(base)
    await page.get_by_role("link", name="Browse artifacts").click()
    names = await page.locator("#entries tbody td:first-child").all_inner_texts()
    assert names == ["config.json", "model/", "notes.txt", "plot.png", "table.csv"]
    await screenshot(page, "5-artifacts")

    await page.get_by_role("link", name="notes.txt").first.click()
    assert await page.locator("#preview pre").inner_text() == ARTIFACTS["notes.txt"].decode()
    assert await page.locator("#digest").inner_text() == hashlib.sha256(ARTIFACTS["notes.txt"]).hexdigest()
    await screenshot(page, "6-preview-text")
    async with page.expect_download() as download_info:
        await page.click("#download-file")
    download = await download_info.value
    saved = tmp_path / "notes.txt"
    await download.save_as(saved)
    assert (download.suggested_filename, saved.read_bytes()) == ("notes.txt", ARTIFACTS["notes.txt"])

    await page.goto(f"{base}/artifacts/config.json")
    assert '"layers": [\n    64,\n    32\n  ]' in await page.locator("#preview pre").inner_text()
    await page.goto(f"{base}/artifacts/table.csv")
    assert await page.locator("#preview table").inner_text() == "epoch\tloss\n1\t0.9\n2\t0.5"
    await page.goto(f"{base}/artifacts/plot.png")
    width = await page.evaluate("document.querySelector('#preview img').naturalWidth")
    assert width == 64, "the image preview did not load"
    await screenshot(page, "7-preview-image")

    await page.goto(f"{base}/artifacts/model")
    await screenshot(page, "8-folder")
    expected = {name[len("model/") :]: data for name, data in ARTIFACTS.items() if name.startswith("model/")}
    async with page.expect_download() as download_info:
        await page.click("#download-zip")
    download = await download_info.value
    await download.save_as(tmp_path / "model.zip")
    with zipfile.ZipFile(tmp_path / "model.zip") as archive:
        members = {i.filename: archive.read(i) for i in archive.infolist() if not i.is_dir()}
    assert download.suggested_filename == "model.zip"
    assert members == {f"model/{name}": data for name, data in expected.items()}
    async with page.expect_download() as download_info:
        await page.click("#download-targz")
    download = await download_info.value
    await download.save_as(tmp_path / "model.tar.gz")
    with tarfile.open(tmp_path / "model.tar.gz") as archive:
        unpacked = {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}  # type: ignore[union-attr]
    assert unpacked == {f"model/{name}": data for name, data in expected.items()}


async def test_bad_input_shows_a_clear_page(logged: Logged, page: Page, console_errors: list[str]) -> None:
    base = f"{logged.gateway.url}/experiments/{logged.experiment_id}"
    cases = [
        (f"{logged.gateway.url}/experiments/987654", 404, "No Experiment with id=987654 exists"),
        (f"{base}/runs/{'f' * 32}", 404, f"Run with id={'f' * 32} not found"),
        (f"{base}?filter=metrics.loss+%3E%3E+1", 400, "Invalid comparator '>>'"),
        (f"{base}/runs/{logged.runs['alpha']}/artifacts/..%2F..%2Fetc", 400, "Invalid path"),
        (f"{logged.gateway.url}/compare-runs?runs={logged.runs['alpha']}", 400, "Choose from 2 to 10 runs"),
    ]
    for url, status, message in cases:
        response = await page.goto(url)
        assert response is not None and response.status == status, url
        text = await page.locator("main").inner_text()
        assert message in text, (url, text)
        assert "Traceback" not in text and "Internal" not in text
    await screenshot(page, "9-bad-input")
    # The browser logs each 4xx page load as a console error; those, and nothing else, are expected.
    assert len(console_errors) == len(cases)
    assert all(f"status of {s}" in e for e, (_, s, _) in zip(console_errors, cases, strict=True))
    console_errors.clear()


async def test_pages_and_their_chart_data_need_credentials_with_auth(browser: Browser, tmp_path: Path) -> None:
    """With --auth, a browser without credentials gets 401 on pages; with a reader's password the run
    page and the tracking API calls its charts make both work; the reader cannot post a form."""
    store = f"sqlite:///{tmp_path / 'auth.db'}"
    for name, permission in (("writer", "write"), ("reader", "read")):
        added = run_cli(
            "users",
            "add",
            name,
            "--permission",
            permission,
            "--password-stdin",
            "--backend-store-uri",
            store,
            stdin=f"{name}-password-1",
        )
        assert added.returncode == 0, added.stderr
    with run_gateway(tmp_path, "--auth", "--backend-store-uri", store) as gateway:
        client = MlflowClient(gateway.url)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MLFLOW_TRACKING_USERNAME", "writer")
            patch.setenv("MLFLOW_TRACKING_PASSWORD", "writer-password-1")
            experiment_id = client.create_experiment("secured")
            run_id = client.create_run(experiment_id, run_name="secured-run").info.run_id
            client.log_batch(run_id, metrics=[Metric("loss", 1.0 / (s + 1), 1000 * s, s) for s in range(5)])
        run_url = f"{gateway.url}/experiments/{experiment_id}/runs/{run_id}"

        anonymous = await browser.new_context()
        # (Navigating there would stop at the browser's password prompt; the request shows what it answers.)
        response = await anonymous.request.get(run_url)
        assert response.status == 401 and "Basic" in response.headers["www-authenticate"]
        await anonymous.close()

        reader = await browser.new_context(http_credentials={"username": "reader", "password": "reader-password-1"})
        page = await reader.new_page()
        response = await page.goto(run_url)
        assert response is not None and response.status == 200
        await page.wait_for_selector("body[data-charts-ready=true]")
        assert await page.evaluate("window.gatewayCharts.loss.tables[0][0]") == [0, 1, 2, 3, 4]
        await page.goto(f"{gateway.url}/experiments")
        refused = await page.request.post(f"{gateway.url}/experiments", form={"name": "not-allowed"})
        assert refused.status == 403
        await reader.close()
