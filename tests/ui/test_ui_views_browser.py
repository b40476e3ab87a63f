"""The UI's views of what MLflow's client logs, in headless Chromium: log_image series as a grid with a
step slider, log_table as a table, HTML download-only, the artifact tree's nesting, single-value
metrics, chart smoothing and log scale, the compare view's charts, and logged-model pages. Screenshots
(1440 px wide) land in tests/output/screenshots/ (docs/ui/ keeps one committed set)."""

from __future__ import annotations

import itertools
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from html import unescape
from pathlib import Path

import mlflow
import numpy as np
import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import LoggedModelOutput, Metric, Param
from playwright.async_api import Browser, Page

from tests.gateway_process import RunningGateway, run_gateway
from tests.ui.test_ui_browser import SCREENSHOTS, browser, console_errors  # noqa: F401 (fixtures)

WIDE = {"width": 1440, "height": 900}
LONG_NAME = "a-folder-whose-name-is-far-too-long-for-the-sidebar-" + "x" * 60
MODEL_FILES = {"MLmodel": b"flavors:\n  python_function: {}\n", "model.pkl": bytes(range(256)) * 40}
TABLE = {"inputs": ["What is MLflow?", "What is a gateway?"], "score": [0.5, 0.75]}


@dataclass
class Logged:
    gateway: RunningGateway
    experiment_id: str
    runs: dict[str, str]
    model_id: str


def square(value: int, size: int = 24) -> np.ndarray:
    return np.full((size, size, 3), value, dtype=np.uint8)


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Logged]:
    with run_gateway(tmp_path_factory.mktemp("views")) as gateway, pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", gateway.url)
        client = MlflowClient(gateway.url)
        experiment_id = client.create_experiment("views")
        runs = {}
        for name, lr, depth, scale, accuracy in (
            ("alpha", "0.1", "3", 1.0, 0.9),
            ("beta", "0.01", "5", 2.0, 0.8),
            ("gamma", "0.001", "8", 4.0, 0.7),
        ):
            run_id = client.create_run(experiment_id, run_name=name).info.run_id
            metrics = [Metric("loss", scale * 100 / (s + 1) + (s % 3), 1_700_000_000_000 + s, s) for s in range(30)]
            metrics.append(Metric("accuracy", accuracy, 1_700_000_000_000, 0))
            client.log_batch(run_id, metrics=metrics, params=[Param("lr", lr), Param("depth", depth)])
            runs[name] = run_id
        for name in ("bare-1", "bare-2"):  # nothing logged: the compare view has nothing to chart
            runs[name] = client.create_run(experiment_id, run_name=name).info.run_id
        alpha = runs["alpha"]
        for step in range(3):
            client.log_image(alpha, square(60 * step), key="sample", step=step, synchronous=True)
        for step in (0, 2):
            client.log_image(alpha, square(200 - 50 * step), key="masks/a", step=step, synchronous=True)
        client.log_table(alpha, data=TABLE, artifact_file="eval/results.json")
        client.log_text(alpha, "<html><script>alert(1)</script></html>", "report.html")
        client.log_text(alpha, "deep", f"{LONG_NAME}/inner/leaf.txt")
        client.log_text(alpha, "later", "zz-after/file.txt")
        source = tmp_path_factory.mktemp("model")
        for name, data in MODEL_FILES.items():
            (source / name).write_bytes(data)
        model = client.create_logged_model(
            experiment_id, name="classifier", source_run_id=alpha, params={"alpha": "0.5"}, tags={"stage": "test"}
        )
        client.log_model_artifacts(model.model_id, str(source))
        client.log_metric(alpha, "rmse", 0.25, model_id=model.model_id)
        client.finalize_logged_model(model.model_id, "READY")
        client.log_outputs(alpha, [LoggedModelOutput(model.model_id, 0)])  # as mlflow.<flavor>.log_model does
        yield Logged(gateway, experiment_id, runs, model.model_id)
    mlflow.set_tracking_uri(None)


@pytest.fixture
async def page(browser: Browser, console_errors: list[str]) -> AsyncIterator[Page]:  # noqa: F811
    context = await browser.new_context(accept_downloads=True, viewport=WIDE)
    opened = await context.new_page()
    opened.on("pageerror", lambda error: console_errors.append(str(error)))
    opened.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    yield opened
    await context.close()
    assert console_errors == [], f"the page reported errors: {console_errors}"


async def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def run_url(logged: Logged, name: str) -> str:
    return f"{logged.gateway.url}/experiments/{logged.experiment_id}/runs/{logged.runs[name]}"


async def test_log_image_series_is_a_grid_whose_slider_changes_the_step(logged: Logged, page: Page) -> None:
    await page.goto(run_url(logged, "alpha"))
    await page.click("#logged-images")  # the run page links the grid (the client tags runs with images)
    await page.wait_for_selector("body[data-images-ready=true]")
    cards = page.locator("figure.image-card")
    assert await cards.evaluate_all("cs => cs.map((c) => c.dataset.key)") == ["masks/a", "sample"]
    steps = "cs => cs.map((c) => c.querySelector('img').dataset.step)"
    assert await cards.evaluate_all(steps) == ["2", "2"]  # the last step first
    assert await page.locator("#image-step-value").inner_text() == "2"
    widths = await cards.evaluate_all("cs => cs.map((c) => c.querySelector('img').naturalWidth)")
    assert all(width > 0 for width in widths), "an image did not load"
    await screenshot(page, "10-image-grid")

    await page.locator("#image-step").fill("1")  # the slider's index: step 1
    assert await cards.evaluate_all(steps) == ["0", "1"]  # masks/a has no step 1: its step 0 stays
    assert "step=1" in page.url
    await page.locator("#image-step").fill("0")
    assert await cards.evaluate_all(steps) == ["0", "0"]
    pixel = await page.evaluate(
        """async () => {
          const img = document.querySelector('figure.image-card[data-key="sample"] img');
          if (!img.complete) await new Promise((done) => img.addEventListener('load', done, { once: true }));
          const canvas = document.createElement('canvas');
          canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
          const context = canvas.getContext('2d');
          context.drawImage(img, 0, 0);
          return Array.from(context.getImageData(1, 1, 1, 1).data.slice(0, 3));
        }"""
    )
    assert pixel == [0, 0, 0], "step 0 of 'sample' is the black square"
    await page.goto(run_url(logged, "alpha") + "/artifacts/images?step=1")
    assert await cards.evaluate_all(steps) == ["0", "1"]  # the step is part of the page's URL


async def test_log_table_shows_as_a_table_and_html_is_download_only(logged: Logged, page: Page) -> None:
    await page.goto(run_url(logged, "alpha") + "/artifacts/eval/results.json")
    assert await page.locator("#preview table").inner_text() == (
        "inputs\tscore\nWhat is MLflow?\t0.5\nWhat is a gateway?\t0.75"
    )
    assert "mlflow.log_table" in await page.locator("#logged-table-note").inner_text()
    await screenshot(page, "11-log-table")
    await page.goto(run_url(logged, "alpha") + "/artifacts/report.html")
    assert "downloads only" in await page.locator("#html-download-only").inner_text()
    assert await page.locator("#preview pre, #preview iframe").count() == 0
    await screenshot(page, "12-html-download-only")


async def test_the_tree_draws_a_folders_children_under_it(logged: Logged, page: Page) -> None:
    await page.goto(run_url(logged, "alpha") + f"/artifacts/{LONG_NAME}/inner")
    tree = page.locator("#tree")

    async def box(name: str) -> dict[str, float]:
        found = await tree.locator("a", has_text=name).last.bounding_box()
        assert found is not None, name
        return dict(found)

    folder, inner, leaf, after = await box(LONG_NAME), await box("inner"), await box("leaf.txt"), await box("zz-after")
    # children are drawn between their folder and the folder's next sibling
    assert folder["y"] < inner["y"] < leaf["y"] < after["y"]
    assert inner["x"] > folder["x"] and leaf["x"] > inner["x"], "each level is indented under its folder"
    aside = await tree.bounding_box()
    assert aside is not None
    assert folder["x"] + folder["width"] <= aside["x"] + aside["width"] + 1, "a long name wraps inside the sidebar"
    assert await page.evaluate("document.documentElement.scrollWidth") <= WIDE["width"]
    await screenshot(page, "13-tree-nested")


async def test_single_values_smoothing_and_log_scale(logged: Logged, page: Page) -> None:
    await page.goto(run_url(logged, "alpha"))
    await page.wait_for_selector("body[data-charts-ready=true]")
    accuracy = page.locator('figure.chart[data-metric="accuracy"]')
    assert await accuracy.get_attribute("data-single") == "true"
    assert await accuracy.locator(".single-value").inner_text() == "0.9"
    assert await accuracy.locator("canvas").count() == 0
    raw = await page.evaluate("window.gatewayCharts.loss.drawn[0][1]")
    await page.locator("#smoothing").fill("0.8")
    smoothed = await page.evaluate("window.gatewayCharts.loss.drawn[0][1]")
    assert len(smoothed) == len(raw) and smoothed[0] == pytest.approx(raw[0]) and smoothed[5] != raw[5]
    rises = [sum(b > a for a, b in itertools.pairwise(ys)) for ys in (raw, smoothed)]
    assert rises[1] < rises[0], rises  # the logged wiggle (up every third step) is smoothed out
    assert "smoothing=0.8" in page.url
    await page.locator("#log-scale").check()
    assert await page.evaluate("window.gatewayCharts.loss.plot.scales.y.distr") == 3
    assert "log=1" in page.url
    await screenshot(page, "14-run-smoothed-log")
    await page.goto(page.url)  # the view survives a reload from its URL
    await page.wait_for_selector("body[data-charts-ready=true]")
    assert await page.locator("#log-scale").is_checked()
    assert await page.evaluate("[window.gatewayCharts.loss.smoothing, window.gatewayCharts.loss.log]") == [0.8, True]


async def test_compare_charts_draw_one_line_per_run(logged: Logged, page: Page) -> None:
    ids = [logged.runs[name] for name in ("alpha", "beta", "gamma")]
    await page.goto(f"{logged.gateway.url}/compare-runs?" + "&".join(f"runs={i}" for i in ids))
    await page.wait_for_selector("body[data-compare-ready=true]")
    parallel = await page.evaluate("window.gatewayCompare.parallel")
    # by default: the params that differ, then the metrics (rmse is alpha's only: logged for its model)
    assert parallel["columns"] == ["params.depth", "params.lr", "metrics.accuracy", "metrics.loss", "metrics.rmse"]
    assert [line["run"] for line in parallel["lines"]] == ids
    assert [sum(p is not None for p in line["points"]) for line in parallel["lines"]] == [5, 4, 4]
    assert await page.locator("#parallel-plot canvas").get_attribute("data-lines") == "3"
    # each run's line is painted in its colour across the plot
    colours = await page.evaluate(
        """() => {
          const canvas = document.querySelector('#parallel-plot canvas');
          const ratio = window.devicePixelRatio || 1;
          const context = canvas.getContext('2d');
          return window.gatewayCompare.parallel.lines.map((line) => {
            const [a, b] = line.points;
            const x = Math.round(((a[0] + b[0]) / 2) * ratio), y = Math.round(((a[1] + b[1]) / 2) * ratio);
            let best = 0;
            for (let dx = -2; dx <= 2; dx++) for (let dy = -2; dy <= 2; dy++) {
              best = Math.max(best, context.getImageData(x + dx, y + dy, 1, 1).data[3]);
            }
            return best;
          });
        }"""
    )
    assert all(alpha > 0 for alpha in colours), colours
    await page.locator("#pc-axes input[value='params.depth']").uncheck()
    remaining = ["params.lr", "metrics.accuracy", "metrics.loss", "metrics.rmse"]
    assert await page.evaluate("window.gatewayCompare.parallel.columns") == remaining
    assert "pc=params.lr" in page.url and "pc=params.depth" not in page.url

    await page.select_option("#scatter-x", "params.depth")
    await page.select_option("#scatter-y", "metrics.accuracy")
    scatter = await page.evaluate("window.gatewayCompare.scatter")
    xs = [point["x"] for point in scatter["points"]]
    ys = [point["y"] for point in scatter["points"]]
    assert len(xs) == 3 and xs == sorted(xs) and ys == sorted(ys)  # deeper runs are less accurate: lower y is up
    await page.select_option("#bar-metric", "metrics.accuracy")
    bars = await page.evaluate("window.gatewayCompare.bars.bars")
    assert [bar["value"] for bar in bars] == [0.9, 0.8, 0.7]
    assert bars[0]["height"] > bars[1]["height"] > bars[2]["height"]
    await screenshot(page, "15-compare-charts")
    await page.click("text=Show only differences")  # the page's own links keep the charts' choices
    await page.wait_for_selector("body[data-compare-ready=true]")
    assert "only_differences=1" in page.url
    assert await page.evaluate("window.gatewayCompare.bars.column") == "metrics.accuracy"
    assert await page.evaluate("window.gatewayCompare.scatter.x") == "params.depth"


async def test_compare_runs_with_nothing_logged_draws_no_charts(logged: Logged, page: Page) -> None:
    await page.goto(f"{logged.gateway.url}/compare-runs?runs={logged.runs['bare-1']}&runs={logged.runs['bare-2']}")
    await page.wait_for_load_state("load")
    assert await page.locator("#compare-charts, figure.chart").count() == 0  # and no script error (the fixture)


async def test_logged_model_page_and_its_zip(logged: Logged, page: Page, tmp_path: Path) -> None:
    await page.goto(run_url(logged, "alpha"))
    await page.locator("#models").get_by_role("link", name="classifier").click()
    assert await page.locator("#model-status").inner_text() == "Ready"
    assert await page.locator("#model-params").inner_text() == "Name\tValue\nalpha\t0.5"
    metrics = await page.locator("#model-metrics tbody td").all_inner_texts()
    assert metrics[:2] == ["rmse", "0.25"]
    assert "stage\ttest" in await page.locator("#model-tags").inner_text()
    assert await page.locator("#source-run a").inner_text() == "alpha"
    assert sorted(await page.locator("#model-files li a").all_inner_texts()) == sorted(MODEL_FILES)
    await screenshot(page, "16-logged-model")
    async with page.expect_download() as download_info:
        await page.click("#download-model-zip")
    download = await download_info.value
    await download.save_as(tmp_path / "model.zip")
    with zipfile.ZipFile(tmp_path / "model.zip") as archive:
        members = {i.filename.rsplit("/", 1)[-1]: archive.read(i) for i in archive.infolist() if not i.is_dir()}
    assert members == MODEL_FILES

    await page.click("#browse-model-files")
    assert sorted(await page.locator("#entries tbody td:first-child").all_inner_texts()) == sorted(MODEL_FILES)
    await page.get_by_role("link", name="MLmodel").first.click()
    assert await page.locator("#preview pre").inner_text() == MODEL_FILES["MLmodel"].decode()

    await page.goto(f"{logged.gateway.url}/experiments/{logged.experiment_id}")
    await page.click("#logged-models-link")
    assert await page.locator("#logged-models tbody td.model-status").all_inner_texts() == ["Ready"]
    await screenshot(page, "17-logged-models")


async def test_the_new_pages_fit_an_800_px_window(logged: Logged, page: Page) -> None:
    await page.set_viewport_size({"width": 800, "height": 900})
    ids = "&".join(f"runs={logged.runs[name]}" for name in ("alpha", "beta", "gamma"))
    for path in (
        f"/compare-runs?{ids}",
        f"/logged-models/{logged.model_id}",
        f"/experiments/{logged.experiment_id}/logged-models",
        f"/experiments/{logged.experiment_id}/runs/{logged.runs['alpha']}/artifacts/images",
        f"/experiments/{logged.experiment_id}/runs/{logged.runs['alpha']}/artifacts/{LONG_NAME}/inner/leaf.txt",
    ):
        await page.goto(logged.gateway.url + path)
        await page.wait_for_load_state("load")
        assert await page.evaluate("document.documentElement.scrollWidth") <= 800, path


def test_bad_inputs_give_clear_pages(logged: Logged) -> None:
    base = logged.gateway.url
    for path, status, message in (
        ("/logged-models/m-0000000000000000000000000000000", 404, "m-0000000000000000000000000000000"),
        (f"/logged-models/{logged.model_id}/artifacts/..%2F..%2Fetc", 400, "Invalid path"),
        (f"/logged-models/{logged.model_id}/artifacts/gone", 404, "No artifact or folder 'gone' in model files"),
        ("/experiments/987654/logged-models", 404, "No Experiment with id=987654"),
        (f"/experiments/{logged.experiment_id}/logged-models?page_token=%%%", 400, "page"),
        (
            f"/experiments/{logged.experiment_id}/runs/{logged.runs['alpha']}/artifacts/images?step=two",
            400,
            "'step' must be a whole number",
        ),
    ):
        response = requests.get(base + path, timeout=30, headers={"Accept": "text/html"})
        assert response.status_code == status, (path, response.status_code, response.text[:300])
        assert response.headers["Content-Type"].startswith("text/html")
        assert message in unescape(response.text), (path, response.text[:1000])
        assert "Traceback" not in response.text
    shown = requests.get(f"{base}/logged-models/{logged.model_id}", timeout=30)
    assert shown.status_code == 200  # the raw status only in the status's tooltip
    assert shown.text.count("LOGGED_MODEL_READY") == shown.text.count('title="LOGGED_MODEL_READY"') == 1
