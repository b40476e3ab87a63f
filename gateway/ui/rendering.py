"""Server-side HTML for the UI: one Jinja2 environment, one error page, the headers every page carries.

Jinja2 is imported on the first page rendered, not at start-up: an artifacts-only worker that only
moves bytes never pays for it (its memory budget is tight, see README "Sizing").
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.http.errors import ApiError, from_store_error, repository_error
from gateway.http.origin import CrossSiteRequest
from gateway.http.request_keys import user_of
from gateway.store.errors import StoreError
from repositories.errors import RepositoryError

if TYPE_CHECKING:
    import jinja2

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
STATIC_PREFIX = "/ui-static"

# Scripts only from this server (no inline script runs); data for charts travels as JSON blocks.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
        "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

PageHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        auto_reload=False,  # templates change with the code: no stat of each one per render on the event loop
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["datetime"] = format_millis
    environment.filters["duration"] = format_duration
    environment.filters["size"] = format_size
    environment.filters["number"] = format_number
    environment.globals["static"] = STATIC_PREFIX
    return environment


def render(request: web.Request, template: str, context: dict[str, Any], *, status: int = 200) -> web.Response:
    """The page `template` rendered with `context` (plus what every page needs) as an HTML response."""
    body = _environment().get_template(template).render({**context, "user": user_of(request)})
    return web.Response(text=body, status=status, content_type="text/html", headers=SECURITY_HEADERS)


def error_page(request: web.Request, status: int, message: str) -> web.Response:
    """A page that says what went wrong and where to go, never a traceback."""
    return render(
        request, "error.html", {"status": status, "message": message, "title": f"Error {status}"}, status=status
    )


def page(handler: PageHandler) -> PageHandler:
    """Wrap a page handler: API, store and storage errors become an HTML page with the same status and message."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return error_page(request, exc.status, exc.message)
        except RepositoryError as exc:
            error = repository_error(request, exc)
            return error_page(request, error.status, error.message)
        except StoreError as exc:
            error = from_store_error(exc)
            return error_page(request, error.status, error.message)

    return wrapped


API_PATHS = ("/api/", "/ajax-api/")


@web.middleware
async def html_not_found(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A browser that asks for a page that does not exist, or posts a form from another site, gets a
    page saying so; API clients keep JSON."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        if request.path.startswith(API_PATHS) or "text/html" not in request.headers.get("Accept", ""):
            raise
        return error_page(request, 404, f"There is no page at {request.path}; start from the experiments list.")
    except CrossSiteRequest as exc:
        if request.path.startswith(API_PATHS):
            raise
        return error_page(request, exc.status, exc.message)


def format_millis(value: int | None) -> str:
    """Milliseconds since the epoch as a UTC date and time, '-' for none."""
    if value is None:
        return "-"
    try:
        return datetime.fromtimestamp(value / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):  # a client may log any 64-bit time
        return f"{value} ms"


def format_duration(start: int | None, end: int | None) -> str:
    if start is None or end is None or end < start:
        return "-"
    seconds = (end - start) / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def format_size(value: int | None) -> str:
    if value is None:
        return ""
    if value < 1024:
        return f"{value} B"
    size = value / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def format_number(value: object) -> str:
    """Metric values: up to 6 significant digits; protobuf's 'NaN'/'Infinity' strings as they are."""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
