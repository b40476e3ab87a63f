"""The Traces tab and the trace page in headless Chromium, on traces the stock mlflow client logged:
the table with previews, status, duration, tags and assessments, the trace filter (and a bad one's
message), paging, a trace's span tree on a timeline with each span's inputs, outputs, attributes and
events, its assessments, and the links between traces and their runs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import AssessmentSource, AssessmentSourceType
from playwright.async_api import Page

from tests.gateway_process import RunningGateway, run_gateway
from tests.mlflow_state import forget_mlflow_state
from tests.ui import test_ui_browser as browser_tests
from tests.ui.test_ui_browser import screenshot

browser = browser_tests.browser  # the shared Chromium fixtures, by the names tests ask for
page = browser_tests.page
console_errors = browser_tests.console_errors

PLAIN_TRACES = 52  # more than one page of the tab (50)


@dataclass
class Traced:
    gateway: RunningGateway
    experiment_id: str
    run_id: str
    nested: str
    failed: str


@mlflow.trace(name="answer_question")
def answer_question(question: str) -> str:
    with mlflow.start_span("retrieve", span_type="RETRIEVER") as span:
        span.set_inputs({"query": question})
        span.set_outputs(["doc-1", "doc-2"])
    return compose(question)


@mlflow.trace(span_type="LLM")
def compose(question: str) -> str:
    return f"The answer to {question!r} is 42."


@mlflow.trace
def explode(value: int) -> int:
    raise RuntimeError(f"exploded on {value}")


@mlflow.trace
def plain(value: int) -> int:
    return value


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traced]:
    with run_gateway(tmp_path_factory.mktemp("ui-traces")) as gateway, pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", gateway.url)
        patch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
        mlflow.set_tracking_uri(gateway.url)
        experiment_id = mlflow.create_experiment("ui-traces")
        mlflow.set_experiment(experiment_id=experiment_id)
        for value in range(PLAIN_TRACES):
            plain(value)
        with pytest.raises(RuntimeError):
            explode(7)
        failed = mlflow.get_last_active_trace_id()
        with mlflow.start_run(run_name="rag-eval") as run:
            answer_question("what is six times seven")
        nested = mlflow.get_last_active_trace_id()
        assert nested is not None and failed is not None
        client = MlflowClient()
        client.set_trace_tag(nested, "team", "search")
        human = AssessmentSource(source_type=AssessmentSourceType.HUMAN, source_id="reviewer")
        mlflow.log_feedback(trace_id=nested, name="correct", value=True, rationale="checked by hand", source=human)
        yield Traced(gateway, experiment_id, run.info.run_id, nested, failed)
    forget_mlflow_state()


async def trace_ids_in_table(tab: Page) -> list[str]:
    await tab.wait_for_selector("#trace-count")  # the traces page, loaded
    return [await row.get_attribute("data-trace-id") or "" for row in await tab.locator("#traces tbody tr").all()]


async def test_traces_tab_filters_pages_and_says_what_is_wrong(
    traced: Traced, page: Page, console_errors: list[str]
) -> None:
    await page.goto(f"{traced.gateway.url}/experiments/{traced.experiment_id}")
    await page.locator("#traces-tab").click()
    await page.wait_for_url("**/traces")
    first_page = await trace_ids_in_table(page)
    assert len(first_page) == 50
    assert first_page[:2] == [traced.nested, traced.failed]  # newest first
    assert await page.locator("#trace-count").inner_text() == f"Traces 1–50 of {PLAIN_TRACES + 2}"
    row = page.locator(f'#traces tr[data-trace-id="{traced.nested}"]')
    text = await row.inner_text()
    assert "what is six times seven" in text and "is 42." in text  # request and response previews
    assert "OK" in text and "team=search" in text and "correct: true" in text
    await screenshot(page, "28-traces")
    await page.get_by_role("link", name="Next →").click()
    await page.wait_for_url("**page=2")
    assert len(await trace_ids_in_table(page)) == PLAIN_TRACES + 2 - 50

    await page.goto(f"{traced.gateway.url}/experiments/{traced.experiment_id}/traces")
    await page.fill("#trace-filter", "trace.status = 'ERROR'")
    await page.get_by_role("button", name="Search").click()
    await page.wait_for_url("**filter=trace.status*")
    assert await trace_ids_in_table(page) == [traced.failed]
    assert "filter=trace.status" in page.url
    await page.fill("#trace-filter", "tags.team = 'search'")
    await page.get_by_role("button", name="Search").click()
    await page.wait_for_url("**filter=tags.team*")
    assert await trace_ids_in_table(page) == [traced.nested]

    response = await page.goto(
        f"{traced.gateway.url}/experiments/{traced.experiment_id}/traces?filter=span.name%20%3D%20'x'"
    )
    assert response is not None and response.status == 400
    problem = await page.get_by_role("alert").inner_text()
    assert "span.name" in problem and "not a searchable field" in problem
    assert await page.locator("#trace-filter").input_value() == "span.name = 'x'"  # kept, to be corrected
    await screenshot(page, "30-traces-bad-filter")
    assert len(console_errors) == 1 and "status of 400" in console_errors[0]
    console_errors.clear()


async def test_trace_page_shows_the_span_tree_and_links_to_its_run(traced: Traced, page: Page) -> None:
    await page.goto(f"{traced.gateway.url}/experiments/{traced.experiment_id}/traces")
    await page.locator(f'#traces tr[data-trace-id="{traced.nested}"] td:first-child a').click()
    await page.wait_for_url(f"**/traces/{traced.nested}")
    assert page.url.endswith(f"/traces/{traced.nested}")
    names = [text.strip() for text in await page.locator("#spans .span-name").all_inner_texts()]
    assert [name.split()[0] for name in names] == ["answer_question", "retrieve", "compose"]
    paddings = await page.locator("#spans .span-name").evaluate_all("els => els.map(e => e.style.paddingLeft)")
    assert paddings == ["0px", "16px", "16px"]  # both children under the root
    bars = await page.locator("#spans .bar-span").evaluate_all("els => els.map(e => parseFloat(e.style.width))")
    assert bars[0] == pytest.approx(100, abs=0.01) and all(0 < width <= 100 for width in bars)

    retrieve = page.locator("details.span").nth(1)
    await retrieve.locator("summary").click()
    assert '"query": "what is six times seven"' in await retrieve.locator("pre.inputs").inner_text()
    assert '"doc-1"' in await retrieve.locator("pre.outputs").inner_text()
    assert "RETRIEVER" in await retrieve.locator("summary").inner_text()
    assessments = await page.locator("#assessments").inner_text()
    assert "correct" in assessments and "checked by hand" in assessments and "HUMAN reviewer" in assessments
    await screenshot(page, "29-trace")

    await page.locator("#trace-runs a").click()
    await page.wait_for_url(f"**/runs/{traced.run_id}")
    await page.locator("#run-traces").click()
    await page.wait_for_url("**filter=run_id*")
    assert await trace_ids_in_table(page) == [traced.nested]


async def test_an_error_trace_shows_its_exception_event(traced: Traced, page: Page, console_errors: list[str]) -> None:
    await page.goto(f"{traced.gateway.url}/experiments/{traced.experiment_id}/traces/{traced.failed}")
    span = page.locator("details.span").first
    assert "ERROR" in await span.locator("summary").inner_text()
    events = await span.locator("ul.events").inner_text()
    assert "exception" in events and "exploded on 7" in events
    missing = await page.goto(f"{traced.gateway.url}/experiments/{traced.experiment_id}/traces/tr-{'0' * 32}")
    assert missing is not None and missing.status == 404
    assert "not found" in await page.locator("main").inner_text()
    assert len(console_errors) == 1 and "status of 404" in console_errors[0]
    console_errors.clear()
