"""Which site a state-changing request comes from: a page on another site may not change anything.

With auth off (the default on loopback) a browser visiting any web page can be made to send
requests to a gateway it reaches: a form post or a `fetch` with a "simple" body (`text/plain`) needs
no CORS preflight, so it used to write a run's `model/model.pkl` through `upload-artifact` and start
multipart uploads. With auth on, a browser would attach a remembered HTTP Basic password to them.
Every POST, PUT, PATCH and DELETE on every route is therefore judged here, before authentication:

- `Sec-Fetch-Site` (sent by every current browser, its own verdict, right behind a proxy that ends
  TLS): `same-origin` and `none` (typed by the user) pass; `same-site` and `cross-site` are refused;
- without it, `Origin` (older browsers): it must be this server's address (`--public-url`, else the
  request's scheme and Host); `Origin: null` (sandboxed frames, some redirects) is refused;
- with neither, the request is not from a browser page (MLflow's Python client, curl) and passes.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.http.errors import ApiError
from gateway.http.request_values import public_base_url

STATE_CHANGING = frozenset(("POST", "PUT", "PATCH", "DELETE"))
API_PATHS = ("/api/", "/ajax-api/")


class CrossSiteRequest(ApiError):
    """403 for a state-changing request a browser sent from another site."""


def refuse_cross_site(request: web.Request) -> None:
    """Raise `CrossSiteRequest` when a browser sent `request` from a page of another site."""
    what = "request" if request.path.startswith(API_PATHS) else "form"
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        if site not in ("same-origin", "none"):
            raise CrossSiteRequest(
                403, "PERMISSION_DENIED", f"Refused a {what} sent from another site (cross-site request)"
            )
        return
    origin = request.headers.get("Origin")
    if origin is None:
        return
    expected = public_base_url(request)
    if origin.lower() != expected.lower():
        raise CrossSiteRequest(
            403,
            "PERMISSION_DENIED",
            f"Refused a {what} sent from {origin[:200]}: this server is {expected}. Behind a proxy that changes the"
            " scheme or host, start the server with --public-url set to the address browsers use.",
        )


@web.middleware
async def same_site_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    """`refuse_cross_site` for every state-changing request, whatever its route."""
    if request.method in STATE_CHANGING:
        refuse_cross_site(request)
    return await handler(request)
