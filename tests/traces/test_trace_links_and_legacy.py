"""The rest of the 3.17.2 client's trace protocol, with the stock client where it has a method: trace
infos in batches, traces linked to runs and prompts after the fact, filter correlation, the UI's
`get-trace-artifact`, and MLflow 2's start / end / info / search; bad input is refused whole."""

from __future__ import annotations

import math

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities.model_registry import PromptVersion
from mlflow.exceptions import MlflowException
from mlflow.tracing.client import TracingClient

from tests.gateway_process import RunningGateway
from tests.traces.conftest import new_experiment

V2 = "/api/2.0/mlflow"
V3 = "/api/3.0/mlflow"


@mlflow.trace
def double(x: int) -> int:
    with mlflow.start_span("inner") as span:
        span.set_inputs({"x": x})
        span.set_outputs(x * 2)
    return x * 2


def _traces(count: int) -> list[str]:
    ids = []
    for x in range(count):
        double(x)
        trace_id = mlflow.get_last_active_trace_id()
        assert trace_id is not None
        ids.append(trace_id)
    return ids


def test_batch_get_trace_infos(tracking: RunningGateway) -> None:
    experiment_id = new_experiment()
    ids = _traces(3)
    store = TracingClient().store
    infos = store.batch_get_trace_infos([ids[2], ids[0], "tr-" + "0" * 32])
    assert [info.trace_id for info in infos] == [ids[2], ids[0]]
    assert all(info.experiment_id == experiment_id for info in infos)
    assert store.batch_get_trace_infos(ids, experiment_ids=["999999"]) == []
    assert [i.trace_id for i in store.batch_get_trace_infos(ids[:1], experiment_ids=[experiment_id])] == ids[:1]
    url = f"{tracking.url}{V3}/traces/batchGetInfos"
    for body in ({}, {"trace_ids": "tr-1"}, {"trace_ids": [f"tr-{i}" for i in range(11)]}, {"trace_ids": [1]}):
        assert requests.post(url, json=body, timeout=10).status_code == 400, body


def test_link_traces_to_a_run_makes_them_found_by_it(tracking: RunningGateway) -> None:
    experiment_id = new_experiment()
    ids = _traces(3)
    client = MlflowClient()
    run = client.create_run(experiment_id)
    client.link_traces_to_run(ids[:2], run.info.run_id)
    client.link_traces_to_run(ids[:1], run.info.run_id)  # again: nothing changes
    found = client.search_traces(locations=[experiment_id], filter_string=f"run_id = '{run.info.run_id}'")
    assert sorted(t.info.trace_id for t in found) == sorted(ids[:2])
    assert len(mlflow.search_traces(locations=[experiment_id], run_id=run.info.run_id)) == 2

    with pytest.raises(MlflowException) as unknown_run:
        client.link_traces_to_run(ids[2:], "0" * 32)
    assert unknown_run.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as unknown_trace:
        client.link_traces_to_run([ids[2], "tr-" + "9" * 32], run.info.run_id)
    assert unknown_trace.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as too_many:
        client.link_traces_to_run([f"tr-{i}" for i in range(101)], run.info.run_id)
    assert too_many.value.error_code == "INVALID_PARAMETER_VALUE"
    found = client.search_traces(locations=[experiment_id], filter_string=f"run_id = '{run.info.run_id}'")
    assert len(found) == 2  # nothing half-linked: ids[2] stays out
    for body in ({"run_id": run.info.run_id}, {"trace_ids": ids, "run_id": 5}, {"trace_ids": [ids[0]]}):
        response = requests.post(f"{tracking.url}{V2}/traces/link-to-run", json=body, timeout=10)
        assert response.status_code == 400, body

    client.delete_traces(experiment_id, trace_ids=ids[:1])
    found = client.search_traces(locations=[experiment_id], filter_string=f"run_id = '{run.info.run_id}'")
    assert [t.info.trace_id for t in found] == [ids[1]]


def test_link_prompt_versions_to_a_trace(tracking: RunningGateway) -> None:
    new_experiment()
    (trace_id,) = _traces(1)
    prompts = [PromptVersion("greeting", 1, "Hello {{name}}"), PromptVersion("farewell", 3, "Bye")]
    response = requests.post(
        f"{tracking.url}{V3}/traces/link-prompts",
        json={"trace_id": trace_id, "prompt_versions": [{"name": p.name, "version": str(p.version)} for p in prompts]},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {}
    missing = requests.post(
        f"{tracking.url}{V3}/traces/link-prompts",
        json={"trace_id": "tr-" + "5" * 32, "prompt_versions": [{"name": "greeting", "version": "1"}]},
        timeout=10,
    )
    assert missing.status_code == 404
    for versions in ("greeting", [{"name": "greeting", "version": "one"}], [{"version": "1"}]):
        bad = requests.post(
            f"{tracking.url}{V3}/traces/link-prompts",
            json={"trace_id": trace_id, "prompt_versions": versions},
            timeout=10,
        )
        assert bad.status_code == 400, versions


def test_filter_correlation(tracking: RunningGateway) -> None:
    experiment_id = new_experiment()
    ids = _traces(4)
    client = MlflowClient()
    for trace_id in ids[:2]:
        client.set_trace_tag(trace_id, "topic", "math")
    client.set_trace_tag(ids[0], "reviewed", "yes")
    result = TracingClient().calculate_trace_filter_correlation(
        experiment_ids=[experiment_id], filter_string1="tags.topic = 'math'", filter_string2="tags.reviewed = 'yes'"
    )
    assert (result.filter1_count, result.filter2_count, result.joint_count, result.total_count) == (2, 1, 1, 4)
    assert 0 < result.npmi <= 1
    none = TracingClient().calculate_trace_filter_correlation(
        experiment_ids=[experiment_id], filter_string1="tags.topic = 'art'", filter_string2="trace.status = 'OK'"
    )
    assert none.filter1_count == 0 and math.isnan(none.npmi)
    bad = requests.post(
        f"{tracking.url}{V3}/traces/calculate-filter-correlation",
        json={"experiment_ids": [experiment_id], "filter_string1": "span.name = 'x'", "filter_string2": "a = 'b'"},
        timeout=10,
    )
    assert bad.status_code == 400


def test_get_trace_artifact_answers_traces_json(tracking: RunningGateway) -> None:
    new_experiment()
    (trace_id,) = _traces(1)
    for prefix in ("/ajax-api/2.0/mlflow", "/ajax-api/3.0/mlflow"):
        response = requests.get(f"{tracking.url}{prefix}/get-trace-artifact?request_id={trace_id}", timeout=10)
        assert response.status_code == 200, response.text
        spans = {span["name"]: span for span in response.json()["spans"]}
        assert set(spans) == {"double", "inner"}
        assert spans["inner"]["parent_span_id"] == spans["double"]["span_id"]
        assert spans["inner"]["attributes"]["mlflow.spanInputs"] == '{"x": 0}'
        assert spans["double"]["status"]["code"] == "STATUS_CODE_OK"
    # MLflow's own reader of traces.json takes it
    from mlflow.entities import TraceData

    data = TraceData.from_dict(response.json())
    assert sorted(span.name for span in data.spans) == ["double", "inner"]
    assert {span.name: span.outputs for span in data.spans} == {"double": 0, "inner": 0}
    url = f"{tracking.url}/ajax-api/2.0/mlflow/get-trace-artifact"
    assert requests.get(url, timeout=10).status_code == 400
    assert requests.get(f"{url}?request_id=tr-{'7' * 32}", timeout=10).status_code == 404
    assert requests.get(f"{url}?request_id={trace_id}&path=image.png", timeout=10).status_code == 404


def test_mlflow_2_start_end_info_and_search(tracking: RunningGateway) -> None:
    experiment_id = new_experiment()
    client = MlflowClient()
    store = client._tracking_client.store
    started = store.deprecated_start_trace_v2(
        experiment_id=experiment_id, timestamp_ms=1_700_000_000_000, request_metadata={"m": "1"}, tags={"t": "a"}
    )
    assert started.request_id.startswith("tr-") and started.status.value == "IN_PROGRESS"
    assert started.tags["mlflow.artifactLocation"].endswith(f"/traces/{started.request_id}/artifacts")
    from mlflow.entities.trace_status import TraceStatus

    ended = store.deprecated_end_trace_v2(
        request_id=started.request_id,
        timestamp_ms=1_700_000_001_500,
        status=TraceStatus.OK,
        request_metadata={"m2": "2"},
        tags={"t2": "b"},
    )
    assert ended.execution_time_ms == 1500 and ended.status.value == "OK"
    assert ended.request_metadata == {"m": "1", "m2": "2"}
    info = requests.get(f"{tracking.url}{V2}/traces/{started.request_id}/info", timeout=10).json()["trace_info"]
    assert info["request_id"] == started.request_id and info["status"] == "OK" and info["execution_time_ms"] == 1500
    found = requests.get(
        f"{tracking.url}{V2}/traces", params={"experiment_ids": experiment_id, "filter": "tags.t = 'a'"}, timeout=10
    ).json()
    assert [t["request_id"] for t in found["traces"]] == [started.request_id]
    assert TracingClient().get_trace_info(started.request_id).execution_duration == 1500

    for body in ({"experiment_id": "999999", "timestamp_ms": 1}, {"experiment_id": experiment_id}):
        assert requests.post(f"{tracking.url}{V2}/traces", json=body, timeout=10).status_code in (400, 404), body
    bad_end = requests.patch(
        f"{tracking.url}{V2}/traces/{started.request_id}", json={"timestamp_ms": 2, "status": "BOGUS"}, timeout=10
    )
    assert bad_end.status_code == 400
    missing = requests.patch(f"{tracking.url}{V2}/traces/tr-{'8' * 32}", json={"timestamp_ms": 2}, timeout=10)
    assert missing.status_code == 404
    assert requests.get(f"{tracking.url}{V2}/traces", timeout=10).status_code == 400
    # an MLflow 2 client uploads the spans to the artifact location the start named; then they are read back
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    get_artifact_repository(started.tags["mlflow.artifactLocation"]).upload_trace_data('{"spans": []}')
    (trace,) = client.search_traces(locations=[experiment_id])
    assert trace.info.trace_id == started.request_id and trace.data.spans == []
