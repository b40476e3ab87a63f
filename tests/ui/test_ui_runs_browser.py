"""The runs tables in headless Chromium, on runs the stock mlflow client logged (issue 24, part A):
nested runs as a tree and linked both ways, long values kept within the window, the sort indicator
and the column chooser, the CSV export, runs of several experiments, and the guards (confirm before
deleting, Compare with nothing ticked). Screenshots land in tests/output/screenshots/ (docs/ui/
keeps the reviewed set).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from playwright.async_api import Dialog, Page

from tests.gateway_process import RunningGateway, run_gateway
from tests.ui import test_ui_browser as shared
from tests.ui.test_ui_browser import screenshot

# The main UI test's browser and page fixtures, under their own names (pytest finds fixtures by the
# module's attribute names; an import of `page` would shadow the tests' `page` argument for linters).
globals().update(browser=shared.browser, console_errors=shared.console_errors, page=shared.page)

LONG_VALUE = "/data/" + "/".join(f"shard-{i:03d}-of-the-training-corpus" for i in range(7))
LONG_VALUE = (LONG_VALUE + "-" * 200)[:200]
ALPHAS = ["0.1", "0.3", "1.0"]
WIDTHS = (1440, 800)


@dataclass
class Logged:
    gateway: RunningGateway
    grid: str  # experiment of the grid search
    other: str  # a second experiment
    parent: str
    children: dict[str, str]  # child run name -> id
    long_run: str
    other_run: str


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Logged]:
    """A grid search (a parent with three nested children, as autolog logs it), a run with a
    200-character parameter value, and a second experiment with one run; all through the stock client."""
    with run_gateway(tmp_path_factory.mktemp("ui-runs")) as gateway:
        mlflow.set_tracking_uri(gateway.url)
        try:
            client = MlflowClient(gateway.url)
            grid = client.create_experiment("grid-search")
            other = client.create_experiment("other-team")
            children = {}
            with mlflow.start_run(experiment_id=grid, run_name="grid") as parent:
                mlflow.log_param("cv", "3")
                mlflow.log_metric("score", 0.5)
                for i, alpha in enumerate(ALPHAS):
                    with mlflow.start_run(experiment_id=grid, run_name=f"alpha-{alpha}", nested=True) as child:
                        mlflow.log_param("alpha", alpha)
                        mlflow.log_metric("score", 0.6 + i / 10)
                        mlflow.set_tag("note", 'has "quotes", commas\nand a newline' if i == 1 else "plain")
                        children[f"alpha-{alpha}"] = child.info.run_id
            with mlflow.start_run(experiment_id=grid, run_name="long-values") as long_run:
                mlflow.log_param("data_path", LONG_VALUE)
                mlflow.log_param("alpha", "2.0")
                mlflow.log_metric("score", 0.9)
            with mlflow.start_run(experiment_id=other, run_name="baseline") as other_run:
                mlflow.log_param("alpha", "0.5")
                mlflow.log_metric("score", 0.4)
            yield Logged(
                gateway, grid, other, parent.info.run_id, children, long_run.info.run_id, other_run.info.run_id
            )
        finally:
            mlflow.set_tracking_uri(None)


async def names_in_table(page: Page) -> list[str]:
    return [text.strip() for text in await page.locator("#runs tbody td.run-name a.clip").all_inner_texts()]


async def assert_within_window(page: Page, width: int, url: str) -> None:
    overflow = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert overflow[0] <= overflow[1] == width, f"{url} is {overflow[0]} px wide in a {width} px window"


async def test_grid_search_children_are_nested_and_linked(logged: Logged, page: Page) -> None:
    await page.set_viewport_size({"width": 1440, "height": 900})
    await page.goto(f"{logged.gateway.url}/experiments/{logged.grid}")
    assert await names_in_table(page) == ["long-values", "grid"]  # top-level runs only, children folded
    toggle = page.locator(f"#run-{logged.parent} a.toggle")
    assert (await toggle.inner_text(), await toggle.get_attribute("aria-expanded")) == ("▸ 3", "false")
    await toggle.click()
    assert f"expand={logged.parent}" in page.url  # the unfolded tree is a link too
    assert await names_in_table(page) == ["long-values", "grid", "alpha-1.0", "alpha-0.3", "alpha-0.1"]
    nested = page.locator(f"#runs tbody tr[data-parent-id='{logged.parent}']")
    assert await nested.count() == 3
    assert await page.locator(f"#run-{logged.parent} a.toggle").get_attribute("aria-expanded") == "true"
    await screenshot(page, "18-runs-nested")

    await page.get_by_role("link", name="alpha-0.3").click()
    await page.wait_for_url(f"**/runs/{logged.children['alpha-0.3']}")
    assert await page.locator("#parent-run").inner_text() == "grid"
    await page.locator("#parent-run a").click()
    await page.wait_for_url(f"**/runs/{logged.parent}")
    children = await page.locator("#child-runs li a").all_inner_texts()
    assert sorted(children) == sorted(logged.children)
    await screenshot(page, "19-run-children")

    await page.goto(f"{logged.gateway.url}/experiments/{logged.grid}?nesting=flat")
    assert sorted(await names_in_table(page)) == sorted(["grid", "long-values", *logged.children])
    child_row = page.locator(f"#run-{logged.children['alpha-0.1']}")
    assert await child_row.locator(".parent-link a").get_attribute("href") == (
        f"/experiments/{logged.grid}/runs/{logged.parent}"
    )

    await page.goto(f"{logged.gateway.url}/experiments/{logged.grid}")
    await page.select_option("#nesting", "flat")
    await page.get_by_role("button", name="Search").click()
    assert "nesting=flat" in page.url and len(await names_in_table(page)) == 5


async def test_a_200_character_value_stays_within_the_window(logged: Logged, page: Page) -> None:
    base = logged.gateway.url
    pages = [
        "/experiments",
        f"/experiments/{logged.grid}?nesting=flat&columns=params.data_path&columns=params.alpha&columns=metrics.score",
        f"/experiments/{logged.grid}/runs/{logged.long_run}",
        f"/compare-runs?runs={logged.long_run}&runs={logged.parent}&runs={logged.other_run}",
        f"/runs?experiments={logged.grid}&experiments={logged.other}&columns=params.data_path",
    ]
    for width in WIDTHS:
        await page.set_viewport_size({"width": width, "height": 900})
        for path in pages:
            await page.goto(base + path)
            await assert_within_window(page, width, path)
            if width == 800 and path.startswith("/compare-runs"):
                await screenshot(page, "23-long-values-800")
    # the runs table clips the value and keeps it whole on hover
    await page.goto(base + pages[1])
    cell = page.locator(f"#run-{logged.long_run} td.params .clip").first
    assert await cell.get_attribute("title") == LONG_VALUE
    assert await cell.evaluate("(el) => el.scrollWidth > el.clientWidth"), "the long value is not clipped"
    # the run page shows all of it, wrapped
    await page.goto(base + pages[2])
    assert LONG_VALUE in await page.locator("#params").inner_text()


async def test_sort_indicator_and_column_chooser_without_modifier_keys(logged: Logged, page: Page) -> None:
    await page.set_viewport_size({"width": 1440, "height": 900})
    await page.goto(f"{logged.gateway.url}/experiments/{logged.grid}?nesting=flat")
    started = page.locator("#runs th", has_text="Started")
    assert await started.get_attribute("aria-sort") == "descending"  # the default order, marked
    chooser = page.locator("#column-chooser")
    await chooser.locator("summary").click()
    shown = await chooser.locator("input:checked").evaluate_all("boxes => boxes.map((b) => b.value)")
    headers = await page.locator("#runs thead th small").all_inner_texts()
    assert len(shown) == len(headers)  # the ticks are the columns shown, nothing else preselected
    for value in shown:
        await chooser.locator(f"input[value='{value}']").click()  # plain clicks: no Ctrl or Shift anywhere
    await chooser.get_by_label("note").click()
    await chooser.get_by_label("score").click()
    await screenshot(page, "20-column-chooser")
    await page.get_by_role("button", name="Search").click()
    columns = parse_qs(urlsplit(page.url).query)["columns"]
    assert columns == ["metrics.score", "tags.note"]
    assert await page.locator("#runs thead th small").all_inner_texts() == ["metrics", "tags"]

    await page.locator("#runs th a", has_text="score").click()
    score = page.locator("#runs th", has_text="score")
    assert await score.get_attribute("aria-sort") == "descending"
    assert await score.locator(".sort-mark").inner_text() == "▼"
    assert await names_in_table(page) == ["long-values", "alpha-1.0", "alpha-0.3", "alpha-0.1", "grid"]
    await page.locator("#runs th a", has_text="score").click()
    assert await page.locator("#runs th", has_text="score").get_attribute("aria-sort") == "ascending"
    assert (await names_in_table(page))[0] == "grid"


def api_values(client: MlflowClient, experiment_id: str, filter_string: str, order: str) -> list[dict[str, str]]:
    """What the API returns for the search, every page of it, as the CSV's columns would hold it."""
    rows, token = [], None
    while True:
        found = client.search_runs([experiment_id], filter_string, order_by=[order], max_results=2, page_token=token)
        for run in found:
            rows.append(
                {
                    "run_id": run.info.run_id,
                    "run_name": run.info.run_name,
                    "start_time": run.info.start_time,
                    "end_time": run.info.end_time,
                    "parent_run_id": run.data.tags.get("mlflow.parentRunId"),
                    "metrics.score": run.data.metrics.get("score"),
                    "params.alpha": run.data.params.get("alpha"),
                    "tags.note": run.data.tags.get("note"),
                }
            )
        token = found.token
        if not token:
            return rows


async def test_csv_has_every_matching_run_as_the_api_returns_it(logged: Logged, page: Page, tmp_path: Path) -> None:
    filter_string = "metrics.score > 0.55"
    order = "metrics.`score` ASC"
    await page.goto(
        f"{logged.gateway.url}/experiments/{logged.grid}?nesting=flat&max_results=2&columns=metrics.score"
        "&columns=params.alpha&columns=tags.note"
    )
    await page.fill("#filter", filter_string)
    await page.get_by_role("button", name="Search").click()
    await page.locator("#runs th a", has_text="score").click()
    await page.locator("#runs th a", has_text="score").click()  # descending, then ascending
    assert len(await names_in_table(page)) == 2  # the page shows two; the CSV has them all
    async with page.expect_download() as download_info:
        await page.click("#download-csv")
    download = await download_info.value
    saved = tmp_path / "runs.csv"
    await download.save_as(saved)
    with open(saved, newline="", encoding="utf-8") as file:
        table = list(csv.DictReader(file))
    expected = api_values(MlflowClient(logged.gateway.url), logged.grid, filter_string, order)
    assert len(expected) == 4  # three children and the long-values run
    assert [row["run_id"] for row in table] == [row["run_id"] for row in expected]
    assert list(table[0]) == [
        "run_id",
        "run_name",
        "experiment_id",
        "parent_run_id",
        "status",
        "start_time",
        "end_time",
        "metrics.score",
        "params.alpha",
        "tags.note",
    ]
    for row, api in zip(table, expected, strict=True):
        assert row["run_name"] == api["run_name"] and row["params.alpha"] == api["params.alpha"]
        assert (int(row["start_time"]), int(row["end_time"])) == (api["start_time"], api["end_time"])
        assert float(row["metrics.score"]) == api["metrics.score"]
        assert row["tags.note"] == (api["tags.note"] or "")
        assert row["parent_run_id"] == (api["parent_run_id"] or "")
        assert (row["experiment_id"], row["status"]) == (logged.grid, "FINISHED")


async def test_runs_of_two_experiments_in_one_table_and_compared(logged: Logged, page: Page) -> None:
    await page.set_viewport_size({"width": 1440, "height": 900})
    await page.goto(f"{logged.gateway.url}/experiments")
    await page.get_by_label("Choose grid-search").check()
    await page.get_by_label("Choose other-team").check()
    await screenshot(page, "24-experiments-chosen")
    await page.click("#cross-experiment-button")
    await page.wait_for_url("**/runs?**")
    assert sorted(parse_qs(urlsplit(page.url).query)["experiments"]) == sorted([logged.grid, logged.other])
    assert sorted(await names_in_table(page)) == ["baseline", "grid", "long-values"]
    experiments = await page.locator("#runs tbody td:nth-child(3)").all_inner_texts()
    assert sorted(text.strip() for text in experiments) == ["grid-search", "grid-search", "other-team"]
    await screenshot(page, "21-cross-experiment")
    await page.check(f"input[value='{logged.long_run}']")
    await page.check(f"input[value='{logged.other_run}']")
    await page.click("#compare-button")
    await page.wait_for_url("**/compare-runs?**")
    compared = await page.locator("#compare-runs thead th a").all_inner_texts()
    assert sorted(compared) == ["baseline", "long-values"]
    await page.goto(f"{logged.gateway.url}/runs?experiments={logged.other}")
    assert await names_in_table(page) == ["baseline"]


async def test_compare_with_nothing_ticked_says_so_on_the_page(logged: Logged, page: Page) -> None:
    await page.set_viewport_size({"width": 1440, "height": 900})
    table = f"{logged.gateway.url}/experiments/{logged.grid}"
    await page.goto(table)
    assert not await page.locator("#compare-problem").is_visible()
    await page.click("#compare-button")
    assert page.url == table
    assert await page.locator("#compare-problem").inner_text() == "Tick 2 to 10 runs to compare; 0 were ticked."
    await screenshot(page, "22-compare-nothing-ticked")
    # without the script, the server sends the button back to the table with the same message
    answer = requests.get(
        f"{logged.gateway.url}/compare-runs",
        params={"back": f"/experiments/{logged.grid}?nesting=flat", "runs": logged.parent},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 303
    back = requests.get(logged.gateway.url + answer.headers["Location"], timeout=30)
    assert "Tick 2 to 10 runs to compare; 1 was ticked." in unescape(back.text)


async def test_deleting_an_experiment_asks_first(logged: Logged, page: Page) -> None:
    client = MlflowClient(logged.gateway.url)
    doomed = client.create_experiment("to-be-deleted")
    await page.goto(f"{logged.gateway.url}/experiments")
    row = page.locator("#experiments tr", has_text="to-be-deleted")
    asked: list[str] = []

    async def dismiss(dialog: Dialog) -> None:
        asked.append(dialog.message)
        await dialog.dismiss()

    page.once("dialog", dismiss)
    await row.get_by_role("button", name="Delete").click()
    assert asked and "to-be-deleted" in asked[0]
    assert client.get_experiment(doomed).lifecycle_stage == "active"

    async def accept(dialog: Dialog) -> None:
        await dialog.accept()

    page.once("dialog", accept)
    async with page.expect_navigation():
        await row.get_by_role("button", name="Delete").click()
    assert client.get_experiment(doomed).lifecycle_stage == "deleted"
