"""The registry's UI pages in headless Chromium, on models the stock client logged and registered: the
Models page and its searches, a model's versions, a version's files and their zip, the client's
`#/models/...` links, the run page's registered versions, and clear pages for bad input."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from playwright.async_api import Page
from sklearn.linear_model import LogisticRegression

from tests.gateway_process import RunningGateway, run_gateway
from tests.ui.test_ui_browser import browser, console_errors, page, screenshot

__all__ = ["browser", "console_errors", "page"]  # the browser fixtures, shared with the tracking pages' tests
MODEL, OTHER = "iris-classifier", "churn-model"


@dataclass
class Registered:
    gateway: RunningGateway
    experiment_id: str
    run_ids: list[str]


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registered]:
    with run_gateway(tmp_path_factory.mktemp("ui-registry")) as gateway, pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", gateway.url)
        patch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        mlflow.set_tracking_uri(gateway.url)
        mlflow.set_registry_uri(gateway.url)
        client = MlflowClient(gateway.url, gateway.url)
        experiment_id = client.create_experiment("ui-registry")
        run_ids = []
        for c in (0.5, 1.0):
            with mlflow.start_run(experiment_id=experiment_id) as run:
                model = LogisticRegression(C=c).fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
                mlflow.sklearn.log_model(model, name="model", registered_model_name=MODEL)
            run_ids.append(run.info.run_id)
        client.update_registered_model(MODEL, description="Classifies irises")
        client.set_registered_model_tag(MODEL, "team", "vision")
        client.set_registered_model_alias(MODEL, "champion", "2")
        client.transition_model_version_stage(MODEL, "1", "Staging")
        client.set_model_version_tag(MODEL, "2", "validated", "yes")
        client.create_registered_model(OTHER, tags={"team": "growth"})
        yield Registered(gateway, experiment_id, run_ids)
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)


async def cells(page: Page, table: str, column: int) -> list[str]:
    texts = await page.locator(f"#{table} tbody tr td:nth-child({column})").all_inner_texts()
    return [text.strip() for text in texts]


async def test_models_page_search_and_the_clients_link(registered: Registered, page: Page) -> None:
    await page.goto(registered.gateway.url + "/#/models")
    await page.wait_for_url("**/models")
    assert await cells(page, "models", 1) == [OTHER, MODEL]
    row = page.locator("#models tbody tr", has_text=MODEL)
    assert "v2" in await row.locator("td:nth-child(2)").inner_text()
    assert "@champion → v2" in await row.locator("td:nth-child(3)").inner_text()
    await screenshot(page, "25-models")
    await page.fill("input[name=tag]", "team=growth")
    await page.click("form.bar button[type=submit]")
    assert await cells(page, "models", 1) == [OTHER]
    await page.fill("input[name=tag]", "")
    await page.fill("input[name=q]", "IRIS")
    await page.click("form.bar button[type=submit]")
    assert await cells(page, "models", 1) == [MODEL]


async def test_model_page_lists_versions_with_stage_aliases_and_links(registered: Registered, page: Page) -> None:
    await page.goto(registered.gateway.url + "/models")
    await page.get_by_role("link", name=MODEL, exact=True).click()
    await page.wait_for_url(f"**/models/{MODEL}")
    assert await cells(page, "versions", 1) == ["Version 2", "Version 1"]
    assert await cells(page, "versions", 2) == ["None", "Staging"]
    assert await cells(page, "versions", 3) == ["@champion", ""]
    assert "Classifies irises" in await page.locator("dl.facts").inner_text()
    assert await cells(page, "tags", 1) == ["team"]
    await screenshot(page, "26-model")
    await page.locator("#versions tbody tr").nth(1).locator("td:nth-child(5) a").click()
    await page.wait_for_url(f"**/experiments/{registered.experiment_id}/runs/{registered.run_ids[0]}")
    assert await page.locator("#registered-versions").inner_text() == f"{MODEL} v1 (Staging)"


async def test_version_page_files_and_zip(registered: Registered, page: Page, tmp_path: Path) -> None:
    await page.goto(registered.gateway.url + f"/#/models/{MODEL}/versions/2")
    await page.wait_for_url(f"**/models/{MODEL}/versions/2")
    names = await cells(page, "files", 1)
    assert "MLmodel" in names and "model.skops" in names
    assert await cells(page, "tags", 1) == ["validated"]
    await screenshot(page, "27-model-version")
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="MLmodel", exact=True).click()
    download = await download_info.value
    await download.save_as(tmp_path / "MLmodel")
    api = f"{registered.gateway.url}/model-versions/get-artifact"
    expected = requests.get(api, params={"name": MODEL, "version": "2", "path": "MLmodel"}, timeout=30).content
    assert (tmp_path / "MLmodel").read_bytes() == expected and b"flavors" in expected
    async with page.expect_download() as download_info:
        await page.click("#zip")
    archive = await download_info.value
    await archive.save_as(tmp_path / "all.zip")
    with zipfile.ZipFile(io.BytesIO((tmp_path / "all.zip").read_bytes())) as zipped:
        assert {"MLmodel", "model.skops"} <= {name.rsplit("/", 1)[-1] for name in zipped.namelist()}
        member = next(name for name in zipped.namelist() if name.endswith("MLmodel"))
        assert zipped.read(member) == expected


def test_a_quote_in_a_search_is_text_not_syntax(registered: Registered) -> None:
    response = requests.get(registered.gateway.url + "/models?q=it's", headers={"Accept": "text/html"}, timeout=30)
    assert response.status_code == 200
    assert "No models match this search." in response.text


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/models/no-such-model", 404, "Registered Model with name=no-such-model not found"),
        (f"/models/{MODEL}/versions/9", 404, f"Model Version (name={MODEL}, version=9) not found"),
        (f"/models/{MODEL}/versions/two", 400, "version"),
        ("/models?tag==x", 400, "key=value"),
        ("/models?page=0", 400, "page"),
    ],
)
def test_bad_input_gets_a_clear_page(registered: Registered, path: str, status: int, message: str) -> None:
    response = requests.get(registered.gateway.url + path, headers={"Accept": "text/html"}, timeout=30)
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("text/html")
    assert message in response.text.replace("&#39;", "'")


async def test_logged_model_page_lists_the_versions_registered_from_it(registered: Registered, page: Page) -> None:
    client = MlflowClient(registered.gateway.url, registered.gateway.url)
    # MLflow answers no model_id for a version (it keeps none); the source names the logged model.
    model_id = client.get_model_version(MODEL, "2").source.removeprefix("models:/")
    assert model_id.startswith("m-")
    await page.goto(f"{registered.gateway.url}/logged-models/{model_id}")
    assert await page.locator("#registered-versions").inner_text() == f"{MODEL} v2"
    await page.locator("#registered-versions a").click()
    await page.wait_for_url(f"**/models/{MODEL}/versions/2")
    await page.get_by_role("link", name=model_id, exact=True).click()  # and back to the logged model
    await page.wait_for_url(f"**/logged-models/{model_id}")
    other_id = client.get_model_version(MODEL, "1").source.removeprefix("models:/")
    await page.goto(f"{registered.gateway.url}/logged-models/{other_id}")
    assert await page.locator("#registered-versions").inner_text() == f"{MODEL} v1 (Staging)"
