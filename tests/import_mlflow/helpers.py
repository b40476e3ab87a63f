"""Running the importer and the stock client against a store, for the import and gc tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
POPULATE = Path(__file__).with_name("populate.py")


def clean_env(**more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "ARTIFACT_GATEWAY_"))}
    env["PYTHONPATH"] = str(ROOT)
    env.update(more)
    return env


def populate(tracking_uri: str, cwd: Path, **env: str) -> dict[str, Any]:
    """Fill the store at `tracking_uri` with the stock client; what it logged."""
    done = subprocess.run(
        [sys.executable, str(POPULATE)],
        cwd=cwd,
        env=clean_env(MLFLOW_TRACKING_URI=tracking_uri, **env),
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def gateway_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def snapshot(tracking_uri: str, logged: dict[str, Any]) -> dict[str, Any]:
    """What the stock client reads of the populated store: compared between the source and the gateway."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    found: dict[str, Any] = {}
    for experiment_id in logged["experiments"]:
        experiment = client.get_experiment(experiment_id)
        found[f"experiment {experiment_id}"] = (experiment.name, experiment.tags, experiment.lifecycle_stage)
    for name in ("parent", "child", "deleted"):
        run = client.get_run(logged[name])
        found[f"run {name}"] = {
            "info": {k: v for k, v in dict(run.info).items() if k != "artifact_uri"},
            "params": run.data.params,
            "tags": run.data.tags,
            "metrics": {key: repr(value) for key, value in run.data.metrics.items()},  # NaN equals itself as text
            "datasets": sorted(
                (d.dataset.name, d.dataset.digest, d.dataset.source, tuple((t.key, t.value) for t in d.tags))
                for d in run.inputs.dataset_inputs
            ),
            "outputs": sorted(o.model_id for o in (run.outputs.model_outputs if run.outputs else [])),
        }
    # a point is stored once, as MLflow's SQL store keeps it (a file store lists a re-logged point twice)
    found["loss history"] = sorted(
        {(m.step, m.timestamp, m.value) for m in client.get_metric_history(logged["parent"], "loss")}
    )
    found["acc history"] = sorted(
        {(m.step, m.timestamp, m.value) for m in client.get_metric_history(logged["child"], "acc")}
    )
    model = client.get_logged_model(logged["model_id"])
    found["logged model"] = (
        model.name,
        model.experiment_id,
        model.source_run_id,
        str(model.status),
        model.params,
        model.tags,
        sorted({(m.key, repr(m.value), m.step, m.timestamp, m.run_id) for m in model.metrics or []}),
    )
    if "version" in logged:
        registered = client.get_registered_model("reg-model")
        found["registered"] = (registered.name, registered.description, registered.tags, registered.aliases)
        version = client.get_model_version("reg-model", logged["version"])
        # the file store's client answers versions as numbers, REST as strings
        found["version"] = (
            str(version.version),
            version.source,
            version.run_id,
            version.tags,
            list(version.aliases),
            version.status,
        )
        found["by alias"] = str(client.get_model_version_by_alias("reg-model", "champion").version)
    if "trace" in logged:
        trace = client.get_trace(logged["trace"])
        found["trace"] = (
            trace.info.trace_id,
            trace.info.experiment_id,
            trace.info.state,
            trace.info.request_time,
            sorted((span.name, span.span_id, span.parent_id, json.dumps(span.inputs)) for span in trace.data.spans),
            sorted((a.name, a.assessment_id, json.dumps(a.value), a.rationale) for a in trace.info.assessments),
        )
    return found
