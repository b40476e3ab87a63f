"""Connections: how long a client may take to send a request, and how many one worker keeps open.

aiohttp holds a connection until its keep-alive timer fires (an hour by default) however slowly a
request arrives, so a client that sends nothing, half a request line, or its headers a byte at a
time held a connection for as long as it liked, and enough of them used up the worker's file
descriptors. Here:

- **idle** (`--keepalive-timeout-seconds`): a connection with no request under way and nothing
  received, since it opened or since its last answer, is closed (aiohttp's keep-alive timer);
- **request head** (`--request-head-timeout-seconds`): once the first byte of a request arrives,
  its request line and headers must be complete within this time, or the connection is closed;
- **JSON and form bodies** (`--json-body-timeout-seconds`, in `gateway.http.middleware`): the whole
  body of a request whose route reads it whole must arrive within this time after its head (408);
  artifact bodies stream and have `--client-idle-timeout-seconds` instead;
- **open connections** (`--max-connections` per worker): a new connection past the cap closes the
  connection that has been idle longest to make room, and is refused with 503 (and `Retry-After`)
  only when every open connection has a request under way. The cap is lowered at start to what the
  worker's file-descriptor limit allows, so `accept()` never runs out of descriptors.

Refusals and timeouts are logged at most once per `QUIET_LOG_SECONDS` per kind, with a count of
those not logged; so are errors the event loop reports (an `accept()` failing for lack of
descriptors used to write one traceback each time).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import resource
from typing import Any

from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

from gateway.logs import quiet_event

QUIET_LOG_SECONDS = 10.0
DESCRIPTORS_PER_CONNECTION = 2
"""A connection's socket and, while it transfers, the file it reads or writes."""
DESCRIPTORS_KEPT_FREE = 64
"""For the database, the listening socket, logs, metrics files and the like."""
ACCEPT_BACKLOG = 128
"""The listening socket's backlog, which is also how many connections asyncio accepts in one go before
any of them reaches the factory (and the cap): room is kept for a batch of them, and for the batch
of connections closed to make room, whose descriptors are released a moment later."""
_REFUSAL_BODY = b'{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "Too many open connections; retry in a second."}'
_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
    b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_REFUSAL_BODY), _REFUSAL_BODY)
)


def connection_limit(configured: int) -> int:
    """`configured`, lowered to what this process's descriptor limit can hold (and logged when lowered)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    fits = max(8, (soft - DESCRIPTORS_KEPT_FREE - 2 * ACCEPT_BACKLOG) // DESCRIPTORS_PER_CONNECTION)
    if fits < configured:
        quiet_event(
            "max_connections",
            "--max-connections lowered to what the open-file limit allows; raise `ulimit -n` to keep more",
            logging.WARNING,
            configured=configured,
            limit=fits,
            open_file_limit=soft,
        )
        return fits
    return configured


def raise_open_file_limit() -> None:
    """Raise this process's soft limit on open files to its hard limit (workers inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):  # a limit the kernel will not grant this process
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class GatewayRequestHandler(RequestHandler):
    """aiohttp's connection handler, with a deadline on each request head and an idle clock."""

    def __init__(self, manager: web.Server, *, connections: Connections, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._connections = connections
        self._head_deadline: asyncio.TimerHandle | None = None
        self.idle_since = self._loop.time()

    @property
    def idle(self) -> bool:
        """No request is under way (a head may be arriving): the connection can go without loss."""
        return not self._request_in_progress and not self._messages

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._connections.opened(self)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._connections.closed(self)
        self._stop_head_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_deadline is None and self.idle and not self._force_close:
            timeout = self._connections.head_timeout
            self._head_deadline = self._loop.call_later(timeout, self._head_timed_out)
            # aiohttp's idle timer must not cut off a head that is still within its own deadline.
            self._next_keepalive_close_time = max(self._next_keepalive_close_time, self._loop.time() + timeout)
        super().data_received(data)
        if self._head_deadline is not None and not self.idle:
            self._stop_head_deadline()

    def _stop_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if not self.idle:  # the head arrived, and the request it began is under way
            return
        quiet_event(
            "head_timeout",
            "closed a connection whose request head did not arrive in time",
            timeout_s=self._connections.head_timeout,
            remote=self.peername[0] if isinstance(self.peername, tuple) else None,
        )
        self.force_close()

    def handle_error(
        self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        if isinstance(exc, HttpProcessingError):
            if request.writer.output_size > 0:  # as aiohttp: a response has begun, nothing else can be sent
                raise ConnectionError("Response is sent already, cannot send another response with the error message")
            return malformed_request_response(self, request, exc)
        answer = super().handle_error(request, status, exc, message)
        assert isinstance(answer, web.Response)
        plain = NoBanner(status=answer.status, body=answer.body, headers={hdrs.CONTENT_TYPE: answer.content_type})
        plain.force_close()
        return plain

    async def _handle_request(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super()._handle_request(*args, **kwargs)
        finally:
            self.idle_since = self._loop.time()


class NoBanner(web.Response):
    """A response without aiohttp's `Server: Python/... aiohttp/...` header (the application's
    responses lose it in `gateway.http.middleware.add_request_id`; this is for those made here)."""

    async def _prepare_headers(self) -> None:
        await super()._prepare_headers()
        self.headers.popall(hdrs.SERVER, None)


def malformed_request_response(handler: RequestHandler, request: web.BaseRequest, exc: HttpProcessingError) -> NoBanner:
    """400 (or aiohttp's status) for bytes that are not an HTTP request, logged as one quiet info line.

    aiohttp logged each at error level with a traceback, so anyone could fill the log with a NUL in a
    request line; the answer does not echo the bytes back either.
    """
    reason = (exc.message or type(exc).__name__).splitlines()[0].strip().rstrip(":")[:100]
    quiet_event("malformed_request", "refused a malformed request", reason=reason, remote=request.remote)
    body = json.dumps({"error_code": "BAD_REQUEST", "message": f"Malformed HTTP request: {reason}"})
    response = NoBanner(status=exc.code or 400, text=body, content_type="application/json")
    response.force_close()
    return response


class _Refused(asyncio.Protocol):
    """A connection over the cap when none can be closed to make room: 503, then closed at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(_REFUSAL)
        transport.close()


class Connections:
    """The connections of one worker: the protocol factory, with the cap and the timeouts."""

    def __init__(self, server: web.Server, *, limit: int, head_timeout: float) -> None:
        self.server = server
        self.limit = limit
        self.head_timeout = head_timeout
        self.open: dict[GatewayRequestHandler, None] = {}  # in the order they opened

    def opened(self, handler: GatewayRequestHandler) -> None:
        self.open[handler] = None

    def closed(self, handler: GatewayRequestHandler) -> None:
        self.open.pop(handler, None)

    def __call__(self) -> asyncio.BaseProtocol:
        if len(self.open) >= self.limit and not self._close_longest_idle():
            quiet_event(
                "connections_refused",
                "refused a connection: every open connection has a request under way",
                logging.WARNING,
                open=len(self.open),
                limit=self.limit,
            )
            return _Refused()
        return GatewayRequestHandler(
            self.server,
            connections=self,
            loop=asyncio.get_running_loop(),
            **self.server._kwargs,  # what aiohttp's own factory passes (keep-alive, access log, sizes)
        )

    def _close_longest_idle(self) -> bool:
        idle = [handler for handler in self.open if handler.idle]
        if not idle:
            return False
        victim = min(idle, key=lambda handler: handler.idle_since)
        self.open.pop(victim, None)
        victim.force_close()
        quiet_event(
            "connections_evicted",
            "closed the longest idle connection to make room for a new one (--max-connections)",
            limit=self.limit,
        )
        return True


class GatewaySite(web.SockSite):
    """`web.SockSite` whose connections come from `Connections` instead of aiohttp's factory."""

    def __init__(self, runner: web.BaseRunner, sock: Any, *, limit: int, head_timeout: float, **kwargs: Any) -> None:
        super().__init__(runner, sock, **kwargs)
        self._limit = limit
        self._head_timeout = head_timeout

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        server = self._runner.server
        assert server is not None
        connections = Connections(server, limit=self._limit, head_timeout=self._head_timeout)
        self._server = await asyncio.get_running_loop().create_server(
            connections, sock=self._sock, ssl=self._ssl_context, backlog=ACCEPT_BACKLOG
        )


def quiet_loop_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The event loop's exception handler: one line per kind per `QUIET_LOG_SECONDS`, never a flood.

    `accept()` failing (no descriptors or memory left) and a connection error nobody retrieved (an HTTP
    client's own task when a storage backend dies mid-request; the request itself already answered
    502) are one warning without a traceback; anything else keeps asyncio's own report, but at most
    once per kind in the period.
    """
    message = str(context.get("message", "event loop error"))
    exception = context.get("exception")
    if message.startswith("socket.accept() out of system resource"):
        quiet_event("accept_failed", "accepting connections failed", logging.WARNING, error=str(exception))
        return
    if isinstance(exception, ConnectionError):  # e.g. a storage backend died under a client's internal task
        quiet_event(f"loop:{message}", message, logging.WARNING, error=repr(exception))
        return
    quiet_event(
        f"loop:{message}",
        message,
        logging.ERROR,
        exc_info=exception if isinstance(exception, BaseException) else False,
    )
