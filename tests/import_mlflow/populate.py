"""Fill an MLflow store through the stock client (run as a script: MLFLOW_TRACKING_URI says where).

Prints one JSON object describing what was logged (ids), which the tests compare after the import.
Experiments with tags, runs with params, metrics over many steps, a nested run, a dataset input, an
sklearn logged model registered with an alias and tags, a trace with an assessment, a deleted run.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")
os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"  # the trace is there before its assessments


def main() -> None:
    import mlflow
    import numpy as np
    import pandas as pd
    from mlflow import MlflowClient
    from sklearn.linear_model import LinearRegression

    with_traces = os.environ.get("POPULATE_TRACES", "1") == "1"
    with_assessments = os.environ.get("POPULATE_ASSESSMENTS", "1") == "1"
    with_registry = os.environ.get("POPULATE_REGISTRY", "1") == "1"
    client = MlflowClient()
    out: dict[str, object] = {}
    experiment_id = mlflow.create_experiment("imported", tags={"team": "vision", "stage": "old"})
    other_id = mlflow.create_experiment("other")
    client.set_experiment_tag(other_id, "note", "second")
    out["experiments"] = [experiment_id, other_id]
    mlflow.set_experiment(experiment_id=experiment_id)
    with mlflow.start_run(run_name="parent") as parent:
        mlflow.log_params({"lr": "0.01", "layers": "3"})
        mlflow.set_tags({"owner": "ana"})
        for step in range(200):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metric("nan_metric", float("nan"))
        frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [2.0, 4.0, 6.0]})
        dataset = mlflow.data.from_pandas(frame, name="train-set", targets="y")
        mlflow.log_input(dataset, context="training")
        model = LinearRegression().fit(frame[["x"]], frame["y"])
        info = mlflow.sklearn.log_model(model, name="model", input_example=frame[["x"]])
        out["model_id"] = info.model_id
        mlflow.log_text("hello", "notes/hello.txt")
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_metric("acc", 0.5, step=1)
            mlflow.log_metric("acc", 0.7, step=2)
            out["child"] = child.info.run_id
    out["parent"] = parent.info.run_id
    with mlflow.start_run(run_name="doomed") as doomed:
        mlflow.log_param("p", "v")
        mlflow.log_text("bye", "gone.txt")
    client.delete_run(doomed.info.run_id)
    out["deleted"] = doomed.info.run_id
    if with_registry:
        client.create_registered_model("reg-model", tags={"domain": "demo"}, description="a model")
        version = mlflow.register_model(f"models:/{info.model_id}", "reg-model")
        client.set_model_version_tag("reg-model", version.version, "validated", "yes")
        client.set_registered_model_alias("reg-model", "champion", version.version)
        out["version"] = version.version
    if with_traces:

        @mlflow.trace(name="predict")
        def predict(x: int) -> int:
            with mlflow.start_span(name="inner") as span:
                span.set_inputs({"x": x})
            return x * 2

        predict(21)
        trace_id = mlflow.get_last_active_trace_id()
        if with_assessments:  # a file store keeps none
            mlflow.log_feedback(trace_id=trace_id, name="quality", value=True, rationale="good")
            mlflow.log_expectation(trace_id=trace_id, name="expected", value=42)
        out["trace"] = trace_id
    out["np"] = float(np.float64(1))
    sys.stdout.write("\n" + json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
