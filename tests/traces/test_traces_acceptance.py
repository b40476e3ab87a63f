"""Tracing as users meet it beyond one client: an OpenTelemetry SDK exporter sending to `/v1/traces`,
8 clients logging at once, and `mlflow.genai.evaluate` with code scorers (no LLM); on SQLite and
PostgreSQL."""

from __future__ import annotations

import threading

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.genai.scorers import scorer

from tests.gateway_process import RunningGateway
from tests.traces.conftest import new_experiment

CLIENTS = 8
TRACES_PER_CLIENT = 25


def test_an_opentelemetry_sdk_exporter_lands_its_spans_as_a_trace(tracking: RunningGateway) -> None:
    exporter_module = pytest.importorskip(
        "opentelemetry.exporter.otlp.proto.http.trace_exporter",
        reason="opentelemetry-exporter-otlp-proto-http is not installed",
    )
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    experiment_id = new_experiment()
    exporter = exporter_module.OTLPSpanExporter(
        endpoint=f"{tracking.url}/v1/traces", headers={"x-mlflow-experiment-id": experiment_id}
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "otel-app"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("otel-test")
    with tracer.start_as_current_span("handle-request") as root:
        root.set_attribute("http.route", "/ask")
        with tracer.start_as_current_span("retrieve"):
            pass
    provider.shutdown()
    trace_id = "tr-" + format(root.get_span_context().trace_id, "032x")
    (found,) = MlflowClient().search_traces(locations=[experiment_id])
    assert found.info.trace_id == trace_id
    trace = mlflow.get_trace(trace_id)
    assert trace is not None
    spans = {span.name: span for span in trace.data.spans}
    assert set(spans) == {"handle-request", "retrieve"}
    assert spans["retrieve"].parent_id == spans["handle-request"].span_id
    assert spans["handle-request"].attributes["http.route"] == "/ask"


@mlflow.trace
def answer(client: int, question: int) -> str:
    with mlflow.start_span("lookup") as span:
        span.set_inputs({"client": client, "question": question})
    return f"{client}-{question}"


def test_eight_clients_logging_at_once_lose_no_trace(tracking: RunningGateway) -> None:
    experiment_id = new_experiment()
    errors: list[BaseException] = []
    start = threading.Barrier(CLIENTS)

    def client(number: int) -> None:
        try:
            start.wait()
            for question in range(TRACES_PER_CLIENT):
                answer(number, question)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    traces = mlflow.search_traces(locations=[experiment_id], max_results=1000, return_type="list")
    assert len(traces) == CLIENTS * TRACES_PER_CLIENT
    outputs = set()
    for trace in traces:
        assert trace.info.state.value == "OK"
        assert sorted(span.name for span in trace.data.spans) == ["answer", "lookup"]
        outputs.add(
            trace.data.spans[0].outputs if trace.data.spans[0].name == "answer" else trace.data.spans[1].outputs
        )
    assert outputs == {f"{c}-{q}" for c in range(CLIENTS) for q in range(TRACES_PER_CLIENT)}


@scorer
def exact_match(outputs: str, expectations: dict[str, str]) -> bool:
    return outputs == expectations["expected_response"]


@scorer
def answer_length(outputs: str) -> int:
    return len(outputs)


def shout(question: str) -> str:
    return question.upper()


def test_genai_evaluate_with_code_scorers_stores_its_run_traces_and_assessments(tracking: RunningGateway) -> None:
    experiment_id = new_experiment()
    questions = ["why", "how", "when"]
    data = [
        {"inputs": {"question": q}, "expectations": {"expected_response": q.upper() if q != "how" else "nope"}}
        for q in questions
    ]
    result = mlflow.genai.evaluate(data=data, predict_fn=shout, scorers=[exact_match, answer_length])
    assert result.metrics["exact_match/mean"] == pytest.approx(2 / 3)
    assert result.metrics["answer_length/mean"] == pytest.approx(10 / 3)
    run = MlflowClient().get_run(result.run_id)
    assert run.info.experiment_id == experiment_id and run.info.status == "FINISHED"
    assert run.data.metrics["exact_match/mean"] == pytest.approx(2 / 3)

    traces = mlflow.search_traces(locations=[experiment_id], run_id=result.run_id, return_type="list")
    assert len(traces) == len(questions)
    by_question = {trace.data.spans[0].inputs["question"]: trace for trace in traces}  # one span each
    assert set(by_question) == set(questions)
    for question, trace in by_question.items():
        assessments = {a.name: a for a in trace.info.assessments}
        assert assessments["exact_match"].value is (question != "how")
        assert assessments["answer_length"].value == len(question)
        assert assessments["expected_response"].value == (question.upper() if question != "how" else "nope")
        assert trace.data.spans[0].outputs == question.upper()
