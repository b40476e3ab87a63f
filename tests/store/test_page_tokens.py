"""Page tokens (gateway/store/pages.py): one reader for every listing that pages.

A token the gateway gave back continues its listing; MLflow's own offset token (standard base64) is
read too; anything else, on every paged route, is the same 400 that says what to send.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests

from gateway.store.errors import InvalidValue
from gateway.store.pages import (
    NOT_A_PAGE,
    offset_token,
    page_offset,
    page_position,
    position_token,
)
from tests.gateway_process import RunningGateway

HISTORY = ("step", "timestamp", "id")


def _token(fields: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(fields).encode()).decode()


MALFORMED = [
    "garbage",
    "not base64 !",
    _token([0]),
    _token({"offset": -1}),
    _token({"offset": True}),
    _token({"offset": "3"}),
    _token({"offset": 1.5}),
    _token({"offset": 2**60}),
    _token({"page": 2}),
]


def test_an_offset_token_reads_back_and_mlflows_own_token_too() -> None:
    assert page_offset(offset_token(25)) == 25
    assert page_offset(None) == page_offset("") == 0
    # MLflow's create_page_token: standard base64 of {"offset": n}, with padding
    mlflow_token = base64.b64encode(json.dumps({"offset": 1}).encode("utf-8")).decode()
    assert mlflow_token == "eyJvZmZzZXQiOiAxfQ=="
    assert page_offset(mlflow_token) == 1


@pytest.mark.parametrize("token", MALFORMED)
def test_a_malformed_offset_token_is_refused(token: str) -> None:
    with pytest.raises(InvalidValue, match=NOT_A_PAGE):
        page_offset(token)


def test_a_token_bound_to_a_search_continues_only_that_search() -> None:
    token = offset_token(10, "search-a")
    assert page_offset(token, "search-a") == 10
    with pytest.raises(InvalidValue, match="continues another search"):
        page_offset(token, "search-b")
    with pytest.raises(InvalidValue, match="continues another search"):
        page_offset(offset_token(10), "search-a")


def test_a_position_token_carries_the_last_rows_sort_key() -> None:
    assert page_position(position_token((3, 1_700_000_000_000, 42)), HISTORY) == (3, 1_700_000_000_000, 42)
    assert page_position(None, HISTORY) is None
    for fields in (
        {"offset": 3},
        {"after": [3, 4]},
        {"after": [3, 4, 5, 6]},
        {"after": [3, 4, True]},
        {"after": [3, 4, 2**63]},
        {"after": [3, 4, "5"]},
        {"after": "3,4,5"},
    ):
        with pytest.raises(InvalidValue, match=NOT_A_PAGE):
            page_position(_token(fields), HISTORY)


ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/api/2.0/mlflow/experiments/search", {"max_results": 10}),
    ("GET", "/api/2.0/mlflow/experiments/search", {"max_results": 10}),
    ("POST", "/api/2.0/mlflow/runs/search", {"experiment_ids": ["0"]}),
    ("POST", "/api/2.0/mlflow/logged-models/search", {"experiment_ids": ["0"]}),
    ("GET", "/api/2.0/mlflow/registered-models/search", {}),
    ("GET", "/api/2.0/mlflow/model-versions/search", {}),
    ("GET", "/api/2.0/mlflow/webhooks", {}),
    ("POST", "/api/3.0/mlflow/traces/search", {"locations": [{"mlflow_experiment": {"experiment_id": "0"}}]}),
    ("GET", "/api/2.0/mlflow/traces", {"experiment_ids": "0"}),
]


@pytest.mark.parametrize(("method", "path", "fields"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_every_paged_route_refuses_a_malformed_token_alike(
    gateway: RunningGateway, method: str, path: str, fields: dict[str, Any]
) -> None:
    def ask(token: str) -> requests.Response:
        if method == "GET":
            return requests.get(f"{gateway.url}{path}", params={**fields, "page_token": token}, timeout=30)
        return requests.post(f"{gateway.url}{path}", json={**fields, "page_token": token}, timeout=30)

    assert ask("").status_code == 200
    for token in MALFORMED:
        answer = ask(token)
        assert answer.status_code == 400, (token, answer.text)
        assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert answer.json()["message"] == NOT_A_PAGE
