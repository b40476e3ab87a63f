"""Routes for administrators (with auth on): who can call this server, and with which tokens."""

from __future__ import annotations

from aiohttp import web

from gateway.auth.middleware import AUTHENTICATOR_KEY
from gateway.http.access import Access, add_route
from gateway.http.prefixes import ADMIN_PREFIX


async def list_users(request: web.Request) -> web.Response:
    """Users and their tokens' metadata (never a secret or hash)."""
    store = request.app[AUTHENTICATOR_KEY].store
    users = await store.list_users()
    tokens = await store.list_tokens()
    return web.json_response(
        {
            "users": [
                {"username": u.username, "permission": str(u.permission), "creation_time": u.creation_time}
                for u in users
            ],
            "tokens": [
                {
                    "token_id": t.token_id,
                    "username": t.username,
                    "name": t.name,
                    "permission": str(t.permission),
                    "creation_time": t.creation_time,
                    "expiry_time": t.expiry_time,
                }
                for t in tokens
            ],
        }
    )


def add_routes(app: web.Application) -> None:
    add_route(app, "GET", f"{ADMIN_PREFIX}/users", list_users, Access.ADMIN)
