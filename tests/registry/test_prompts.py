"""Prompts with the stock client (`mlflow.genai`), on SQLite and PostgreSQL: register, load by version
and alias, search, tags and aliases; prompts and models never show up in each other's searches, and
a prompt version's source is only MLflow's placeholder."""

from __future__ import annotations

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from tests.gateway_process import RunningGateway
from tests.registry.test_registry_client import client_env, logged_version, tracking, unique

__all__ = ["client_env", "tracking"]  # the module's fixtures: a gateway on each store, the client pointed at it


def test_register_load_by_version_and_alias(tracking: RunningGateway) -> None:
    name = unique("qa").replace("-", "_")
    first = mlflow.genai.register_prompt(name, "Answer {{question}}", commit_message="first", tags={"team": "a"})
    second = mlflow.genai.register_prompt(name, "Answer well: {{ question }}")
    assert (first.version, second.version) == (1, 2)
    loaded = mlflow.genai.load_prompt(f"prompts:/{name}/1")
    assert (loaded.template, loaded.commit_message, loaded.tags) == ("Answer {{question}}", "first", {"team": "a"})
    assert loaded.format(question="why?") == "Answer why?"
    mlflow.genai.set_prompt_alias(name, "production", 1)
    assert mlflow.genai.load_prompt(f"prompts:/{name}@production").version == 1
    assert mlflow.genai.load_prompt(f"prompts:/{name}@latest").template == "Answer well: {{ question }}"
    assert mlflow.genai.load_prompt(f"prompts:/{name}@production").aliases == ["production"]
    mlflow.genai.delete_prompt_alias(name, "production")
    with pytest.raises(MlflowException, match="production"):
        mlflow.genai.load_prompt(f"prompts:/{name}@production")


def test_chat_prompts_keep_their_messages(tracking: RunningGateway) -> None:
    name = unique("chat").replace("-", "_")
    messages = [{"role": "system", "content": "You are {{style}}."}, {"role": "user", "content": "{{question}}"}]
    mlflow.genai.register_prompt(name, messages)
    loaded = mlflow.genai.load_prompt(f"prompts:/{name}/1")
    assert loaded.template == messages
    assert loaded.format(style="brief", question="hi") == [
        {"role": "system", "content": "You are brief."},
        {"role": "user", "content": "hi"},
    ]


def test_search_prompts_and_models_apart(tracking: RunningGateway) -> None:
    prompt, model = unique("sp").replace("-", "_"), unique("sm")
    mlflow.genai.register_prompt(prompt, "Hello {{name}}", tags={"owner": "searcher"})
    logged_version(model)
    found = {p.name for p in mlflow.genai.search_prompts(f"name LIKE '{prompt[:6]}%'")}
    assert found == {prompt}
    assert [p.name for p in mlflow.genai.search_prompts("tags.owner = 'searcher'")] == [prompt]
    client = MlflowClient()
    models = {m.name for m in client.search_registered_models(f"name IN ('{prompt}', '{model}')")}
    assert models == {model}
    assert client.search_model_versions(f"name = '{prompt}'") == []
    assert [v.version for v in client.search_model_versions(f"name = '{model}'")] == ["1"]
    # The REST answer as MLflow's server gives it: without a prompt filter, a search has no prompts.
    plain = requests.get(
        f"{tracking.url}/api/2.0/mlflow/registered-models/search", params={"filter": f"name = '{prompt}'"}, timeout=10
    )
    assert plain.json() == {}
    asked = requests.get(
        f"{tracking.url}/api/2.0/mlflow/registered-models/search",
        params={"filter": f"name = '{prompt}' AND tags.`mlflow.prompt.is_prompt` = 'true'"},
        timeout=10,
    )
    assert [m["name"] for m in asked.json()["registered_models"]] == [prompt]


def test_prompt_tags_and_version_tags(tracking: RunningGateway) -> None:
    name = unique("tags").replace("-", "_")
    mlflow.genai.register_prompt(name, "Hi {{x}}", tags={"a": "1"})
    client = MlflowClient()
    client.set_prompt_tag(name, "b", "2")
    client.delete_prompt_tag(name, "a")
    assert {k: v for k, v in client.get_prompt(name).tags.items() if not k.startswith("_mlflow")} == {"b": "2"}
    client.set_prompt_version_tag(name, "1", "reviewed", "yes")
    assert client.get_prompt_version(name, 1).tags["reviewed"] == "yes"
    client.delete_prompt_version_tag(name, "1", "reviewed")
    assert "reviewed" not in client.get_prompt_version(name, 1).tags
    versions = client.search_prompt_versions(name)
    assert [v.version for v in versions] == [1]
    client.delete_prompt_version(name, "1")
    client.delete_prompt(name)
    with pytest.raises(MlflowException, match="not found"):
        client.get_prompt_version(name, 1)


def test_a_prompt_version_only_takes_mlflows_placeholder_source(tracking: RunningGateway) -> None:
    name = unique("src").replace("-", "_")
    mlflow.genai.register_prompt(name, "Hi {{x}}")
    api = f"{tracking.url}/api/2.0/mlflow"
    for source in ("/etc/passwd", "file:///etc", "s3://bucket/key", "runs:/abc/model"):
        refused = requests.post(
            f"{api}/model-versions/create",
            json={"name": name, "source": source, "tags": [{"key": "mlflow.prompt.is_prompt", "value": "true"}]},
            timeout=10,
        )
        assert refused.status_code == 400
        assert refused.json() == {
            "error_code": "INVALID_PARAMETER_VALUE",
            "message": f"Invalid prompt source: '{source}'. Prompt sources must use an MLflow placeholder.",
        } | {k: refused.json()[k] for k in refused.json() if k not in ("error_code", "message")}
    assert [v.version for v in MlflowClient().search_prompt_versions(name)] == [1]
