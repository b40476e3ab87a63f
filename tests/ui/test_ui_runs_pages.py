"""The runs tables over HTTP (issue 24, part A): the CSV export of more runs than one store read holds,
in the page's order and with RFC 4180 quoting; child counts on both databases; and a clear 4xx page
for every bad input of the new views."""

from __future__ import annotations

import csv
import io
import re
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from mlflow import MlflowClient

from gateway.tracking.store import MetricPoint
from gateway.ui.csv_export import RUNS_PER_READ
from tests.gateway_process import RunningGateway
from tests.ui.test_ui_pages import assert_clear_page, get, served_store
from tests.ui.test_ui_pages import store_uri as shared_store_uri

globals()["store_uri"] = shared_store_uri  # the sqlite/postgresql fixture, under the name tests ask for


async def test_csv_streams_every_run_in_the_pages_order(store_uri: str, tmp_path: Path) -> None:
    """More runs than one read of the store: every one, once, in the table's order, values quoted."""
    async with served_store(store_uri, tmp_path) as (server, session, store):
        experiment_id = await store.create_experiment("many", None, [])
        count = RUNS_PER_READ + 150
        for i in range(count):
            run = await store.create_run(experiment_id, "", 1_700_000_000_000 + i, f"run-{i}", [])
            run_id = run["info"]["run_id"]
            note = [{"key": "note", "value": f'a "quoted", value\non two lines #{i}'}]
            await store.log_batch(run_id, [MetricPoint("score", float(i % 97) / 7, 0, 0)], [], note)
        order = "metrics.`score` DESC"
        params = [("experiments", experiment_id), ("order_by", order), ("nesting", "flat")]
        params += [("columns", "metrics.score"), ("columns", "tags.note")]
        async with session.get(server.make_url("/runs.csv"), params=params) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
            assert response.headers["Content-Disposition"] == 'attachment; filename="runs.csv"'
            text = await response.text()
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        expected, token = [], None
        while True:
            found, token = await store.search_runs([experiment_id], None, "ACTIVE_ONLY", 400, [order], token)
            expected += found
            if token is None:
                break
        assert len(rows) == len(expected) == count
        assert [row["run_id"] for row in rows] == [run["info"]["run_id"] for run in expected]
        for row, run in zip(rows, expected, strict=True):
            data = run["data"]
            assert float(row["metrics.score"]) == data["metrics"][0]["value"]
            assert row["tags.note"] == next(tag["value"] for tag in data["tags"] if tag["key"] == "note")


async def test_child_counts_on_each_database(store_uri: str, tmp_path: Path) -> None:
    async with served_store(store_uri, tmp_path) as (server, session, store):
        experiment_id = await store.create_experiment("tree", None, [])
        parent = (await store.create_run(experiment_id, "", 5, "parent", []))["info"]["run_id"]
        lone = (await store.create_run(experiment_id, "", 10, "lone", []))["info"]["run_id"]
        children = []
        for i in range(3):
            tags = [{"key": "mlflow.parentRunId", "value": parent}]
            children.append((await store.create_run(experiment_id, "", i, f"child-{i}", tags))["info"]["run_id"])
        await store.set_run_lifecycle(children[0], "deleted")
        assert await store.child_run_counts([parent, lone], "ACTIVE_ONLY") == {parent: 2}
        assert await store.child_run_counts([parent, lone], "ALL") == {parent: 3}
        async with session.get(server.make_url(f"/experiments/{experiment_id}")) as response:
            html = await response.text()
        assert "Runs 1–2 of 2 top-level" in html and 'aria-expanded="false"' in html
        # unfolding a parent on page 2 stays on page 2, and lists its (active) children under it
        async with session.get(server.make_url(f"/experiments/{experiment_id}?max_results=1&page=2")) as response:
            html = await response.text()
        toggle = re.search(r'<a class="toggle" href="([^"]+)"', html)
        assert toggle is not None
        query = parse_qs(urlsplit(unescape(toggle.group(1))).query)
        assert (query["page"], query["expand"], query["max_results"]) == (["2"], [parent], ["1"])
        async with session.get(server.make_url(unescape(toggle.group(1)))) as response:
            html = await response.text()
        assert html.count(f'data-parent-id="{parent}"') == 2 and "Runs 2–2 of 2 top-level" in html


@pytest.fixture(scope="module")
def two(gateway: RunningGateway) -> tuple[str, str]:
    client = MlflowClient(gateway.url)
    first, second = client.create_experiment("bad-input-a"), client.create_experiment("bad-input-b")
    client.create_run(first, run_name="one")
    return first, second


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/runs?experiments=424242", 404, "424242"),
        ("/runs?experiments=not-a-number", 400, "not-a-number"),
        ("/runs?" + "&".join(f"experiments={i}" for i in range(21)), 400, "Choose at most 20 experiments (got 21)"),
        ("/runs?experiments={a}&nesting=sideways", 400, "'nesting' must be one of tree, flat, got 'sideways'"),
        ("/runs.csv", 400, "Name the experiments to export: experiments=<id>"),
        ("/runs.csv?experiments=424242", 404, "424242"),
        ("/runs.csv?experiments={a}&filter=metrics.score+>", 400, "the last comparison has no value"),
        ("/runs.csv?experiments={a}&order_by=metrics.", 400, "order_by"),
        ("/runs.csv?experiments={a}&columns=secrets.key", 400, "Invalid column 'secrets.key'"),
        ("/runs.csv?experiments={a}&view=gone", 400, "'view' must be one of active, deleted, all"),
        ("/compare-runs?back=//evil.example/experiments/1", 400, "Choose from 2 to 10 runs"),
        ("/compare-runs?back=https://evil.example/runs", 400, "Choose from 2 to 10 runs"),
    ],
)
def test_bad_input_gets_a_clear_page(
    gateway: RunningGateway, two: tuple[str, str], path: str, status: int, message: str
) -> None:
    response = get(gateway, path.format(a=two[0]), headers={"Accept": "text/html"})
    assert_clear_page(response, status, message)
    assert "run_id,run_name" not in response.text  # no CSV was started


def test_compare_button_with_too_few_runs_returns_to_the_table(gateway: RunningGateway, two: tuple[str, str]) -> None:
    back = f"/runs?experiments={two[0]}&experiments={two[1]}&filter="
    response = get(gateway, "/compare-runs", params={"back": back})
    assert response.status_code == 303
    assert response.headers["Location"].startswith(f"/runs?experiments={two[0]}&experiments={two[1]}")
    table = requests.get(gateway.url + response.headers["Location"], timeout=30)
    assert "Tick 2 to 10 runs to compare; 0 were ticked." in table.text
