"""Error bodies as MLflow 3.17 answers them: code, message, and the classification its clients read."""

from __future__ import annotations

import json

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import ErrorCode

from gateway.http.errors import ApiError


@pytest.mark.parametrize("code", sorted(ErrorCode.keys()))
def test_every_code_is_classified_as_mlflow_classifies_it(code: str) -> None:
    expected = json.loads(MlflowException("m", error_code=ErrorCode.Value(code)).serialize_as_json())
    assert ApiError(400, code, "m").body() == expected
