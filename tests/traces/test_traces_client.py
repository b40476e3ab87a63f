"""The stock `mlflow` client's tracing against the gateway, on SQLite and PostgreSQL: traces and their
spans are stored (OTLP + start), read back, searched, tagged, deleted; bad input is refused whole."""

from __future__ import annotations

import gzip
import json
import uuid

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import SpanStatusCode
from mlflow.exceptions import MlflowException
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.gateway_process import RunningGateway
from tests.traces.conftest import Records, new_experiment

V3 = "/api/3.0/mlflow"


@mlflow.trace
def add_one(x: int) -> int:
    return x + 1


@mlflow.trace(name="outer")
def outer(x: int) -> int:
    with mlflow.start_span("block") as span:
        span.set_inputs({"x": x})
        value = add_one(x) * 2
        span.set_outputs({"value": value})
    return value


@mlflow.trace
def broken(x: int) -> int:
    raise ValueError(f"broken with {x}")


def test_nested_trace_round_trips(tracking: RunningGateway, no_export_warning: Records) -> None:
    new_experiment()
    assert outer(3) == 8
    trace_id = mlflow.get_last_active_trace_id()
    assert trace_id is not None
    mlflow.flush_trace_async_logging()
    assert no_export_warning.messages == []

    trace = mlflow.get_trace(trace_id)
    assert trace is not None
    assert trace.info.trace_id == trace_id
    assert trace.info.state.value == "OK"
    assert trace.info.tags["mlflow.trace.spansLocation"] == "TRACKING_STORE"
    spans = {span.name: span for span in trace.data.spans}
    assert set(spans) == {"outer", "block", "add_one"}
    assert spans["outer"].parent_id is None
    assert spans["block"].parent_id == spans["outer"].span_id
    assert spans["add_one"].parent_id == spans["block"].span_id
    assert spans["outer"].inputs == {"x": 3} and spans["outer"].outputs == 8
    assert spans["block"].inputs == {"x": 3} and spans["block"].outputs == {"value": 8}
    assert spans["add_one"].inputs == {"x": 3} and spans["add_one"].outputs == 4
    assert all(span.status.status_code == SpanStatusCode.OK for span in spans.values())
    assert all(span.trace_id == trace_id for span in spans.values())


def test_a_raising_function_gives_an_error_trace(tracking: RunningGateway) -> None:
    new_experiment()
    with pytest.raises(ValueError, match="broken with 7"):
        broken(7)
    trace_id = mlflow.get_last_active_trace_id()
    assert trace_id is not None
    trace = mlflow.get_trace(trace_id)
    assert trace is not None
    assert trace.info.state.value == "ERROR"
    (span,) = trace.data.spans
    assert span.status.status_code == SpanStatusCode.ERROR
    exception = [event for event in span.events if event.name == "exception"]
    assert exception and "broken with 7" in str(exception[0].attributes.get("exception.message"))


def test_search_filters_by_status_and_pages(tracking: RunningGateway) -> None:
    experiment_id = new_experiment()
    for x in range(5):
        add_one(x)
    with pytest.raises(ValueError):
        broken(1)
    client = MlflowClient()
    everything = client.search_traces(locations=[experiment_id])
    assert len(everything) == 6
    times = [t.info.request_time for t in everything]
    assert times == sorted(times, reverse=True)
    errors = client.search_traces(locations=[experiment_id], filter_string="trace.status = 'ERROR'")
    assert [t.info.state.value for t in errors] == ["ERROR"]
    assert len(client.search_traces(locations=[experiment_id], filter_string="trace.status = 'OK'")) == 5
    seen: list[str] = []
    token = None
    while True:
        page = client.search_traces(locations=[experiment_id], max_results=2, page_token=token)
        seen += [t.info.trace_id for t in page]
        token = page.token
        if not token:
            break
    assert sorted(seen) == sorted(t.info.trace_id for t in everything) and len(seen) == 6
    frame = mlflow.search_traces(locations=[experiment_id], filter_string="trace.status = 'OK'")
    assert len(frame) == 5
    oldest = min(times)
    later = client.search_traces(locations=[experiment_id], filter_string=f"trace.timestamp_ms > {oldest}")
    assert len(later) == len([t for t in times if t > oldest])


def test_trace_tags_and_metadata_search(tracking: RunningGateway) -> None:
    experiment_id = new_experiment()
    add_one(1)
    trace_id = mlflow.get_last_active_trace_id()
    assert trace_id is not None
    client = MlflowClient()
    client.set_trace_tag(trace_id, "team", "blue")
    assert client.get_trace(trace_id).info.tags["team"] == "blue"
    found = client.search_traces(locations=[experiment_id], filter_string="tags.team = 'blue'")
    assert [t.info.trace_id for t in found] == [trace_id]
    client.delete_trace_tag(trace_id, "team")
    assert "team" not in client.get_trace(trace_id).info.tags
    assert client.search_traces(locations=[experiment_id], filter_string="tags.team = 'blue'") == []


def test_traces_inside_a_run_are_linked_to_it(tracking: RunningGateway) -> None:
    experiment_id = new_experiment()
    with mlflow.start_run() as run:
        add_one(10)
    trace_id = mlflow.get_last_active_trace_id()
    assert trace_id is not None
    trace = mlflow.get_trace(trace_id)
    assert trace is not None
    assert trace.info.trace_metadata["mlflow.sourceRun"] == run.info.run_id
    client = MlflowClient()
    found = client.search_traces(locations=[experiment_id], filter_string=f"run_id = '{run.info.run_id}'")
    assert [t.info.trace_id for t in found] == [trace_id]
    frame = mlflow.search_traces(locations=[experiment_id], run_id=run.info.run_id)
    assert len(frame) == 1


def test_delete_traces_by_id_and_by_time(tracking: RunningGateway) -> None:
    experiment_id = new_experiment()
    ids = []
    for x in range(3):
        add_one(x)
        ids.append(mlflow.get_last_active_trace_id())
    client = MlflowClient()
    assert client.delete_traces(experiment_id, trace_ids=[ids[0]]) == 1
    with pytest.raises(MlflowException) as missing:
        client.get_trace(ids[0])
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    newest = client.get_trace(ids[2]).info.request_time
    assert client.delete_traces(experiment_id, max_timestamp_millis=newest + 1) == 2
    assert client.search_traces(locations=[experiment_id]) == []


def test_unknown_trace_is_a_404(tracking: RunningGateway) -> None:
    for path in (f"{V3}/traces/tr-{'0' * 32}", f"{V3}/traces/get?trace_id=tr-{'0' * 32}"):
        response = requests.get(tracking.url + path, timeout=10)
        assert response.status_code == 404, path
        assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException):
        MlflowClient().set_trace_tag(f"tr-{'1' * 32}", "k", "v")


def _otlp(tracking: RunningGateway, body: bytes, experiment_id: str, **headers: str) -> requests.Response:
    return requests.post(
        tracking.url + "/v1/traces",
        data=body,
        headers={"Content-Type": "application/x-protobuf", "x-mlflow-experiment-id": experiment_id, **headers},
        timeout=10,
    )


def _export(trace_hex: str, spans: int = 2) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for index in range(spans):
        span = scope.spans.add()
        span.trace_id = bytes.fromhex(trace_hex)
        span.span_id = (index + 1).to_bytes(8, "big")
        if index:
            span.parent_span_id = (1).to_bytes(8, "big")
        span.name = f"s{index}"
        span.start_time_unix_nano = 1_700_000_000_000_000_000 + index
        span.end_time_unix_nano = 1_700_000_001_000_000_000
    return request


def test_malformed_otlp_is_a_400_and_writes_nothing(tracking: RunningGateway) -> None:
    experiment_id = new_experiment()
    assert _otlp(tracking, b"\xff\xff\xff not protobuf", experiment_id).status_code == 400
    bad = _export("ab" * 16)
    bad.resource_spans[0].scope_spans[0].spans[1].span_id = b"\x01"  # a span id of one byte: the whole export fails
    assert _otlp(tracking, bad.SerializeToString(), experiment_id).status_code == 400
    nul = _export("ef" * 16)
    nul.resource_spans[0].scope_spans[0].spans[1].name = "a\x00b"  # PostgreSQL's text cannot keep it
    assert _otlp(tracking, nul.SerializeToString(), experiment_id).status_code == 400
    long_id = _export("9a" * 16)
    attribute = long_id.resource_spans[0].scope_spans[0].spans[0].attributes.add()
    attribute.key, attribute.value.string_value = "mlflow.traceRequestId", json.dumps("tr-" + "x" * 60)
    assert _otlp(tracking, long_id.SerializeToString(), experiment_id).status_code == 400
    assert (
        requests.post(
            tracking.url + "/v1/traces", data=b"{}", headers={"Content-Type": "application/json"}, timeout=10
        ).status_code
        == 400
    )  # no experiment header
    assert _otlp(tracking, b"", "999999").status_code in (200, 404)
    assert MlflowClient().search_traces(locations=[experiment_id]) == []
    unknown = _otlp(tracking, _export("cd" * 16).SerializeToString(), "999999")
    assert unknown.status_code == 404
    assert MlflowClient().search_traces(locations=[experiment_id]) == []


def test_otlp_alone_makes_a_trace_and_compressed_json_works(tracking: RunningGateway) -> None:
    experiment_id = new_experiment()
    ok = _otlp(
        tracking, gzip.compress(_export("12" * 16).SerializeToString()), experiment_id, **{"Content-Encoding": "gzip"}
    )
    assert ok.status_code == 200, ok.text
    body = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "34" * 16,
                                "spanId": "00000000000000aa",
                                "name": "json-root",
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000002000000000",
                                "status": {"code": "STATUS_CODE_ERROR"},
                            }
                        ]
                    }
                ]
            }
        ]
    }
    response = requests.post(
        tracking.url + "/v1/traces", json=body, headers={"x-mlflow-experiment-id": experiment_id}, timeout=10
    )
    assert response.status_code == 200, response.text
    traces = {t.info.trace_id: t for t in MlflowClient().search_traces(locations=[experiment_id])}
    assert set(traces) == {"tr-" + "12" * 16, "tr-" + "34" * 16}
    assert traces["tr-" + "34" * 16].info.state.value == "ERROR"
    assert traces["tr-" + "34" * 16].info.execution_duration == 2000
    full = mlflow.get_trace("tr-" + "12" * 16)
    assert full is not None and sorted(s.name for s in full.data.spans) == ["s0", "s1"]


def test_too_many_spans_is_a_413(tracking: RunningGateway) -> None:
    experiment_id = new_experiment()
    response = _otlp(tracking, _export("56" * 16, spans=10_001).SerializeToString(), experiment_id)
    assert response.status_code == 413
    assert MlflowClient().search_traces(locations=[experiment_id]) == []


def test_batch_get_is_bounded(tracking: RunningGateway) -> None:
    ids = "&".join(f"trace_ids=tr-{i:032x}" for i in range(11))
    response = requests.get(f"{tracking.url}{V3}/traces/batchGet?{ids}", timeout=10)
    assert response.status_code == 400


def test_feedback_and_expectations(tracking: RunningGateway) -> None:
    from mlflow.entities import AssessmentSource, AssessmentSourceType

    new_experiment()
    add_one(2)
    trace_id = mlflow.get_last_active_trace_id()
    assert trace_id is not None
    human = AssessmentSource(source_type=AssessmentSourceType.HUMAN, source_id="ann")
    feedback = mlflow.log_feedback(
        trace_id=trace_id, name="correct", value=True, rationale="it adds one", source=human, metadata={"k": "v"}
    )
    assert feedback.assessment_id and feedback.trace_id == trace_id
    expectation = mlflow.log_expectation(trace_id=trace_id, name="answer", value={"x": 3}, source=human)
    fetched = mlflow.get_assessment(trace_id, feedback.assessment_id)
    assert fetched.value is True and fetched.rationale == "it adds one" and fetched.metadata == {"k": "v"}
    assert fetched.source.source_id == "ann"

    updated = mlflow.update_assessment(
        trace_id=trace_id,
        assessment_id=feedback.assessment_id,
        assessment=mlflow.entities.Feedback(name="correct", value=False, rationale="off by one"),
    )
    assert updated.value is False and updated.rationale == "off by one"

    overriding = mlflow.override_feedback(
        trace_id=trace_id, assessment_id=feedback.assessment_id, value=True, rationale="looked again", source=human
    )
    trace = mlflow.get_trace(trace_id)
    assert trace is not None
    by_id = {a.assessment_id: a for a in trace.info.assessments}
    assert set(by_id) == {feedback.assessment_id, expectation.assessment_id, overriding.assessment_id}
    assert by_id[expectation.assessment_id].value == {"x": 3}
    assert by_id[feedback.assessment_id].valid is False and by_id[overriding.assessment_id].valid is True

    mlflow.delete_assessment(trace_id=trace_id, assessment_id=overriding.assessment_id)
    assert mlflow.get_assessment(trace_id, feedback.assessment_id).valid is True
    with pytest.raises(MlflowException) as gone:
        mlflow.get_assessment(trace_id, overriding.assessment_id)
    assert gone.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException):
        mlflow.log_feedback(trace_id=f"tr-{'2' * 32}", name="x", value=1, source=human)


def test_an_assessment_needs_a_name_and_one_kind(tracking: RunningGateway) -> None:
    new_experiment()
    add_one(5)
    trace_id = mlflow.get_last_active_trace_id()
    url = f"{tracking.url}{V3}/traces/{trace_id}/assessments"
    for body in (
        {"assessment": {"feedback": {"value": 1}}},
        {"assessment": {"assessment_name": "n"}},
        {"assessment": {"assessment_name": "n", "feedback": {"value": 1}, "expectation": {"value": 2}}},
        {"assessment": "no"},
    ):
        assert requests.post(url, json=body, timeout=10).status_code == 400, body
    trace = mlflow.get_trace(trace_id)
    assert trace is not None and trace.info.assessments == []


def test_start_refuses_what_it_cannot_keep(tracking: RunningGateway) -> None:
    def start(experiment_id: str, **info: object) -> requests.Response:
        trace_info = {
            "trace_id": "tr-" + uuid.uuid4().hex,
            "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment_id}},
            "request_time": "2026-01-02T03:04:05.678Z",
            "execution_duration": "1.5s",
            "state": "OK",
            **info,
        }
        return requests.post(f"{tracking.url}{V3}/traces", json={"trace": {"trace_info": trace_info}}, timeout=10)

    experiment_id = new_experiment()
    assert start(str(2**40)).status_code == 404
    assert start("999999").status_code == 404
    assert start(experiment_id, state="BOGUS").status_code == 400
    assert start(experiment_id, request_time="yesterday").status_code == 400
    assert start(experiment_id, tags={"k": "a\x00b"}).status_code == 400
    assert MlflowClient().search_traces(locations=[experiment_id]) == []
    ok = start(experiment_id, tags={"k": "v"})
    assert ok.status_code == 200, ok.text
    info = ok.json()["trace"]["trace_info"]
    assert info["request_time"] == "2026-01-02T03:04:05.678Z" and info["execution_duration"] == "1.500s"
    assert info["tags"] == {"k": "v", "mlflow.trace.spansLocation": "TRACKING_STORE"}


def test_search_traces_loads_spans_of_more_traces_than_one_batch_get(tracking: RunningGateway) -> None:
    experiment_id = new_experiment()
    for x in range(12):
        add_one(x)
    traces = mlflow.search_traces(locations=[experiment_id], return_type="list")
    assert len(traces) == 12
    assert all([span.name for span in trace.data.spans] == ["add_one"] for trace in traces)


@pytest.mark.parametrize("max_traces", [-8232744498124311008888487936, 0, -3])
def test_delete_traces_refuses_a_count_no_database_can_take(tracking: RunningGateway, max_traces: int) -> None:
    """Found by schemathesis: a count beyond 64 bits reached the database's LIMIT and failed there (500)."""
    response = requests.post(
        f"{tracking.url}/api/2.0/mlflow/traces/delete-traces",
        json={"experiment_id": new_experiment(), "max_timestamp_millis": 1, "max_traces": max_traces},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert "max_traces" in response.json()["message"]
