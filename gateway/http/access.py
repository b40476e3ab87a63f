"""What each route demands of its caller, declared where the route is added.

Every route is added through `add_route` with an `Access`; the application refuses to start if a
route was added any other way, so a new route cannot ship without a decision about who may call it.
The auth middleware reads the table; with auth off the table is still checked, but not enforced.
"""

from __future__ import annotations

import enum

from aiohttp import web
from aiohttp.typedefs import Handler


class Access(enum.Enum):
    """Who may call a route."""

    PUBLIC = "public"  # liveness, version: no credential, even with auth on
    READ = "read"  # reads of experiments, runs and artifacts (search POSTs included)
    WRITE = "write"  # anything that creates, changes or deletes data
    ADMIN = "admin"  # users and tokens
    SIGNED = "signed"  # the URL carries a gateway-signed grant, issued to a writer; that is its credential


ROUTE_ACCESS_KEY = web.AppKey("route_access", dict[web.AbstractRoute, Access])


def add_route(app: web.Application, method: str, path: str, handler: Handler, access: Access) -> None:
    """Add `method path` with the access it demands."""
    route = app.router.add_route(method, path, handler)
    app[ROUTE_ACCESS_KEY][route] = access


def undeclared_routes(app: web.Application) -> list[str]:
    """Routes added without `add_route`: `METHOD path` of each, empty when all are declared."""
    declared = app[ROUTE_ACCESS_KEY]
    return [
        f"{route.method} {route.resource.canonical if route.resource else '?'}"
        for route in app.router.routes()
        if route not in declared
    ]
