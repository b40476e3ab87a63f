"""What the gateway keeps on a request while handling it, as typed keys (`web.RequestKey`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from gateway.auth.store import Principal

REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id")
"""The client's X-Request-Id when well formed, else a new random one; echoed and logged."""
CLIENT: web.RequestKey[str] = web.RequestKey("client")
"""The client's address: the peer's, or from X-Forwarded-For behind --trusted-proxies."""
BYTES_IN: web.RequestKey[int] = web.RequestKey("bytes_in")
"""Body bytes received so far (uploads)."""
BYTES_OUT: web.RequestKey[int] = web.RequestKey("bytes_out")
"""Body bytes sent so far, for streamed answers whose length the response does not know."""
ERROR: web.RequestKey[str] = web.RequestKey("error")
"""Why the request failed, for its access log line."""
OUTCOME: web.RequestKey[str] = web.RequestKey("outcome")
"""How a request that was answered ended, when not "ok" (such as "storage_failed_mid_body")."""
BACKEND_ERROR: web.RequestKey[str] = web.RequestKey("backend_error")
"""The storage error's class name, counted in the metrics."""
PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal")
"""The authenticated user, with auth on."""


def user_of(request: web.Request) -> str | None:
    """The authenticated user's name, None with auth off or before authentication."""
    principal = request.get(PRINCIPAL)
    return principal.username if principal is not None else None


def client_of(request: web.BaseRequest) -> str:
    """The client's address (`CLIENT`), the peer's before the request middleware has set it."""
    return request.get(CLIENT) or request.remote or "unknown"
