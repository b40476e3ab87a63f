"""MLflow-shaped error responses, and the one mapping from repository and store errors to HTTP.

Client-side conditions get 4xx (or 501 for a feature that is off): MLflow's client retries 408,
429 and 500/502/503/504 for minutes, so those are kept for conditions a retry can fix.
"""

from __future__ import annotations

from aiohttp import web

from gateway.http.request_keys import BACKEND_ERROR, ERROR
from gateway.store import errors as store
from repositories import errors as repo


class ApiError(Exception):
    """An error answered as `{"error_code": ..., "message": ...}` with `status`."""

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        classification: tuple[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.headers = headers or {}
        self.classification = classification or _CLASSIFICATION.get(error_code)
        """(sqlstate, error_class): MLflow's, from the code unless the error names its own."""

    @classmethod
    def invalid(cls, message: str) -> ApiError:
        return cls(400, "INVALID_PARAMETER_VALUE", message)

    def body(self) -> dict[str, str]:
        """MLflow 3.17's error JSON: the code and message, then the classification its clients read."""
        body = {"error_code": self.error_code, "message": self.message}
        if self.classification is not None:
            body["sqlstate"], body["error_class"] = self.classification
        return body

    def response(self) -> web.Response:
        return web.json_response(self.body(), status=self.status, headers=self.headers)


_CLASSIFICATION: dict[str, tuple[str, str]] = {
    # (sqlstate, error_class) as MLflow 3.17's MlflowException derives them from the error code;
    # codes MLflow does not classify (RESOURCE_EXHAUSTED, NOT_IMPLEMENTED, ...) carry neither field.
    "BAD_REQUEST": ("KAM00", "INVALID_PARAMETER_VALUE"),
    "CUSTOMER_UNAUTHORIZED": ("KAM00", "PERMISSION_DENIED"),
    "ENDPOINT_NOT_FOUND": ("KAM00", "RESOURCE_NOT_FOUND"),
    "FEATURE_DISABLED": ("KAM00", "FEATURE_DISABLED"),
    "INTERNAL_ERROR": ("XXM00", "CLIENT_INTERNAL_ERROR"),
    "INVALID_PARAMETER_VALUE": ("KAM00", "INVALID_PARAMETER_VALUE"),
    "INVALID_STATE": ("XXM00", "CLIENT_INTERNAL_ERROR"),
    "NOT_FOUND": ("KAM00", "RESOURCE_NOT_FOUND"),
    "PERMISSION_DENIED": ("KAM00", "PERMISSION_DENIED"),
    "RESOURCE_ALREADY_EXISTS": ("KAM00", "RESOURCE_ALREADY_EXISTS"),
    "RESOURCE_DOES_NOT_EXIST": ("KAM00", "RESOURCE_NOT_FOUND"),
    "TEMPORARILY_UNAVAILABLE": ("XXM00", "CLIENT_INTERNAL_ERROR"),
}


_REPOSITORY_STATUS: dict[type[repo.RepositoryError], tuple[int, str]] = {
    repo.NotFound: (404, "RESOURCE_DOES_NOT_EXIST"),
    repo.InvalidPath: (400, "INVALID_PARAMETER_VALUE"),
    repo.Conflict: (400, "INVALID_PARAMETER_VALUE"),
    repo.ChecksumMismatch: (400, "INVALID_PARAMETER_VALUE"),
    repo.IncompleteBody: (400, "BAD_REQUEST"),
    repo.AlreadyExists: (409, "RESOURCE_ALREADY_EXISTS"),
    repo.TooLarge: (413, "INVALID_PARAMETER_VALUE"),
    repo.PermissionDenied: (403, "PERMISSION_DENIED"),
    repo.StorageFull: (507, "RESOURCE_EXHAUSTED"),
    repo.NotSupported: (501, "NOT_IMPLEMENTED"),
    repo.BackendError: (502, "INTERNAL_ERROR"),
}


def from_repository_error(exc: repo.RepositoryError) -> ApiError:
    if isinstance(exc, repo.ConcurrentWrite):  # 503 + Retry-After: MLflow's client sends the file again
        return ApiError(503, "TEMPORARILY_UNAVAILABLE", exc.message, headers={"Retry-After": "1"})
    for kind in type(exc).__mro__:
        if kind in _REPOSITORY_STATUS:
            status, code = _REPOSITORY_STATUS[kind]
            return ApiError(status, code, exc.message)
    return ApiError(500, "INTERNAL_ERROR", exc.message)


def repository_error(request: web.Request, exc: repo.RepositoryError) -> ApiError:
    """`from_repository_error`, noted on `request` for the access line and metrics (the backend's words
    for a 5xx, which the operator needs)."""
    request[BACKEND_ERROR] = type(exc).__name__
    error = from_repository_error(exc)
    if error.status >= 500:
        request[ERROR] = error.message
    return error


_STORE_STATUS: dict[type[store.StoreError], tuple[int, str]] = {
    store.NotFound: (404, "RESOURCE_DOES_NOT_EXIST"),
    store.AlreadyExists: (400, "RESOURCE_ALREADY_EXISTS"),  # 400, as MLflow answers it
    store.InvalidValue: (400, "INVALID_PARAMETER_VALUE"),
}


def from_store_error(exc: store.StoreError) -> ApiError:
    """The metadata store's refusal as MLflow answers it."""
    if isinstance(exc, store.UnknownAttribute):
        return ApiError(400, "INVALID_PARAMETER_VALUE", exc.message, classification=("KAM04", "ATTRIBUTE_NOT_FOUND"))
    for kind in type(exc).__mro__:
        if kind in _STORE_STATUS:
            status, code = _STORE_STATUS[kind]
            return ApiError(status, code, exc.message)
    return ApiError(500, "INTERNAL_ERROR", exc.message)
