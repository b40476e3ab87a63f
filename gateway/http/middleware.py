"""The one middleware every request passes: request id, error mapping, access log line."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_exceptions import HTTPException

from gateway.http.app_keys import REPOSITORY_KEY, SETTINGS_KEY
from gateway.http.client_address import TRUSTED_PROXIES_KEY, client_address
from gateway.http.errors import ApiError, from_store_error, repository_error
from gateway.http.hosts import host_refused
from gateway.http.request_keys import BACKEND_ERROR, BYTES_IN, BYTES_OUT, CLIENT, ERROR, OUTCOME, REQUEST_ID
from gateway.http.unserved import not_served_message, unserved_feature
from gateway.logs import event
from gateway.metrics import metrics, route_label
from gateway.settings import Network
from gateway.store.errors import StoreError
from repositories.errors import RepositoryError

# JSON bodies (tracking, multipart) are read whole; artifact bodies stream and are not bound by this.
# MLflow's largest legal log-batch (100 params of 6,000 and 100 tags of 8,000 characters, 1,000
# metrics) is about 1.5 MB: aiohttp's default of 1 MiB would refuse it.
MAX_JSON_BODY = 16 << 20

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class InFlight:
    """Counts requests being handled, so shutdown can wait for them to finish."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def __enter__(self) -> None:
        self.count += 1
        self._idle.clear()

    def __exit__(self, *exc: object) -> None:
        self.count -= 1
        if self.count == 0:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Wait until no request is in flight."""
        await self._idle.wait()


IN_FLIGHT_KEY = web.AppKey("in_flight", InFlight)
BODY_DEADLINE: web.RequestKey[asyncio.TimerHandle] = web.RequestKey("body_deadline")


class BodyTimeout(TimeoutError):
    """A JSON or form body did not arrive within --json-body-timeout-seconds of its request's head."""


def _start_body_deadline(request: web.Request) -> None:
    """Fail the body's reads with `BodyTimeout` unless it has all arrived within the setting.

    A route that streams its body (artifact uploads, which have their own idle timeout) lifts the
    deadline with `streams_body` as it starts reading.
    """
    if not request.body_exists or request.content.is_eof():
        return
    timeout = request.app[SETTINGS_KEY].json_body_timeout_seconds
    content = request.content

    def expire() -> None:
        if not content.is_eof() and content.exception() is None:
            content.set_exception(BodyTimeout(f"The request body did not arrive within {timeout:g} s"))

    request[BODY_DEADLINE] = asyncio.get_running_loop().call_later(timeout, expire)


def streams_body(request: web.Request) -> None:
    """This request's body streams (however long it takes): lift the whole-body deadline."""
    if (deadline := request.pop(BODY_DEADLINE, None)) is not None:
        deadline.cancel()


async def _answer_and_close(request: web.Request, response: web.StreamResponse) -> None:
    """Send `response`, then close the connection at once: the rest of a body that is not coming is
    not waited for (aiohttp would otherwise read it for another lingering period)."""
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()


def _http_exception_to_api(exc: HTTPException, request: web.Request) -> ApiError:
    if exc.status == 404:
        if (feature := unserved_feature(request.path)) is not None:
            return ApiError(404, "ENDPOINT_NOT_FOUND", not_served_message(feature))
        return ApiError(404, "ENDPOINT_NOT_FOUND", f"No API endpoint {request.method} {request.path}")
    if exc.status == 405:
        if (feature := unserved_feature(request.path)) is not None:  # e.g. POST traces/link-to-run
            return ApiError(404, "ENDPOINT_NOT_FOUND", not_served_message(feature))
        allowed = exc.headers.get("Allow", "")
        return ApiError(
            405,
            "BAD_REQUEST",
            f"Method {request.method} is not allowed here; allowed: {allowed}",
            headers={"Allow": allowed},
        )
    if exc.status == 413:  # only aiohttp's client_max_size raises this: JSON bodies
        return ApiError(413, "BAD_REQUEST", f"The JSON request body is larger than {MAX_JSON_BODY >> 20} MiB")
    return ApiError(exc.status, "BAD_REQUEST", exc.reason)


@web.middleware
async def request_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    incoming = request.headers.get("X-Request-Id", "")
    request_id = incoming if _REQUEST_ID.match(incoming) else os.urandom(16).hex()
    request[REQUEST_ID] = request_id
    proxies: tuple[Network, ...] = request.app[TRUSTED_PROXIES_KEY]
    request[CLIENT] = client_address(request, proxies)
    started = time.perf_counter()
    status = 500
    outcome = "ok"
    response: web.StreamResponse | None = None
    _start_body_deadline(request)
    try:
        try:
            if (refusal := host_refused(request)) is not None:  # before any handler, the 404 one included
                raise ApiError(403, "PERMISSION_DENIED", refusal)
            with request.app[IN_FLIGHT_KEY]:
                response = await handler(request)
        except BodyTimeout as exc:
            outcome = "body_timeout"
            response = ApiError(408, "BAD_REQUEST", f"{exc} (--json-body-timeout-seconds); send it faster").response()
            await _answer_and_close(request, response)
        except HTTPException as exc:
            if exc.status < 400:
                raise
            response = _http_exception_to_api(exc, request).response()
        except ApiError as exc:
            response = exc.response()
        except RepositoryError as exc:
            response = repository_error(request, exc).response()
        except StoreError as exc:
            response = from_store_error(exc).response()
        status = response.status
        return response
    except ConnectionError:  # reset, aborted, broken pipe, aiohttp's ClientConnectionResetError
        # The client went away mid-transfer: one log line, no traceback, nothing to answer.
        outcome = "client_disconnected"
        status = 499
        return response if response is not None else web.Response(status=499, reason="Client Closed Request")
    except web.HTTPException as exc:
        status = exc.status
        raise
    except Exception:
        outcome = "error"
        event(
            "unhandled error",
            logging.ERROR,
            request_id=request_id,
            method=request.method,
            path=request.rel_url.raw_path,
            exc_info=True,
        )
        response = ApiError(500, "INTERNAL_ERROR", f"Internal error; request id {request_id}").response()
        return response
    finally:
        streams_body(request)  # the deadline, if still set, ends with the request
        elapsed = time.perf_counter() - started
        _observe(request, status, elapsed)
        error: dict[str, Any] = {"error": request[ERROR]} if ERROR in request else {}
        bytes_out = request.get(BYTES_OUT)
        if bytes_out is None and response is not None and request.method != "HEAD":
            bytes_out = response.content_length
        event(
            "request",
            request_id=request_id,
            method=request.method,
            path=request.rel_url.raw_path,
            status=status,
            bytes_in=request.get(BYTES_IN, 0),
            bytes_out=bytes_out or 0,
            duration_ms=round(elapsed * 1000, 2),
            remote=request[CLIENT],
            outcome=request.get(OUTCOME, outcome),
            **error,
        )


def _observe(request: web.Request, status: int, seconds: float) -> None:
    """The request's metrics: route template, status, duration, body bytes, storage error."""
    repository = request.app.get(REPOSITORY_KEY)
    try:
        metrics().observe_request(
            request.method,
            route_label(request),
            status,
            seconds,
            backend=repository.kind if repository is not None else "none",
            bytes_in=request.get(BYTES_IN, 0),
            bytes_out=request.get(BYTES_OUT, 0),
            backend_error=request.get(BACKEND_ERROR),
        )
    except Exception:  # a full metrics directory must not turn answers into errors
        event("metrics update failed", logging.WARNING, exc_info=True)


async def add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """Echo the request id on every response, streamed ones included (on_response_prepare), and drop
    aiohttp's `Server: Python/... aiohttp/...` banner, which only tells an attacker what to try."""
    if REQUEST_ID in request:
        response.headers["X-Request-Id"] = request[REQUEST_ID]
    response.headers.popall("Server", None)
