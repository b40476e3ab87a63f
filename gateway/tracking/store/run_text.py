"""A run as MLflow's JSON text, written straight from its rows: the very text `json.dumps` gives of the
run's dict (the shape MLflow's `Run.to_proto` answers), without building the dict. A run search's page
is sent as this text, so neither the dicts nor their encoding cost anything on the event loop."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from json.encoder import encode_basestring_ascii
from typing import Any

from gateway.tracking.store.datasets import dataset_input
from gateway.tracking.store.values import json_double

_text = encode_basestring_ascii
"""A string as `json.dumps` writes it (its own encoder: ASCII, escapes as json.dumps escapes them)."""


def _key_values(name: str, rows: Sequence[Any]) -> str:
    pairs = ", ".join(f'{{"key": {_text(row.key)}, "value": {_text(row.value)}}}' for row in rows)
    return f'"{name}": [{pairs}]'


def _metric(row: Any) -> str:
    value = row.value
    number = repr(value) if not row.is_nan and math.isfinite(value) else json_double(math.nan if row.is_nan else value)
    return f'{{"key": {_text(row.key)}, "value": {number}, "timestamp": {int(row.timestamp)}, "step": {int(row.step)}}}'


def run_info_text(row: Any) -> str:
    """A runs row as the run's `info` object."""
    run_id = _text(row.run_uuid)
    end = f', "end_time": {int(row.end_time)}' if row.end_time is not None else ""
    return (
        f'{{"run_uuid": {run_id}, "run_id": {run_id}, "experiment_id": {_text(str(row.experiment_id))}, '
        f'"run_name": {_text(row.name)}, "user_id": {_text(row.user_id)}, "status": {_text(row.status)}, '
        f'"start_time": {int(row.start_time)}, "artifact_uri": {_text(row.artifact_uri)}, '
        f'"lifecycle_stage": {_text(row.lifecycle_stage)}{end}}}'
    )


def run_text(
    row: Any,
    metrics: Sequence[Any],
    params: Sequence[Any],
    tags: Sequence[Any],
    inputs: Sequence[Any],
    model_inputs: Sequence[Any],
    outputs: Sequence[Any],
) -> str:
    """The run of `row` with its latest metrics, params, tags, dataset and model inputs, and model
    outputs (each list's rows in the order they are listed), as JSON text."""
    data = []
    if metrics:
        data.append('"metrics": [' + ", ".join(map(_metric, metrics)) + "]")
    if params:
        data.append(_key_values("params", params))
    if tags:
        data.append(_key_values("tags", tags))
    run_inputs = []
    if inputs:
        run_inputs.append('"dataset_inputs": ' + json.dumps([dataset_input(i) for i in inputs]))
    if model_inputs:
        run_inputs.append('"model_inputs": ' + json.dumps([{"model_id": i.model_id} for i in model_inputs]))
    run_outputs = (
        '"model_outputs": ' + json.dumps([{"model_id": o.model_id, "step": o.step} for o in outputs]) if outputs else ""
    )
    return (
        f'{{"info": {run_info_text(row)}, "data": {{{", ".join(data)}}}, '
        f'"inputs": {{{", ".join(run_inputs)}}}, "outputs": {{{run_outputs}}}}}'
    )
