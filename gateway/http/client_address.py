"""The address a request came from: the peer, or behind a trusted proxy the client it forwarded.

`X-Forwarded-For` is believed only when the peer is one of `--trusted-proxies`: its entries are read
from the right (each proxy appends the address it received the request from), proxies that are
themselves trusted are skipped, and the first one that is not is the client. Entries to the left of
it were written by the client and are ignored. Without `--trusted-proxies` the header is ignored.
The login limiter, the access log and audit lines all use this address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web

from gateway.settings import Network

TRUSTED_PROXIES_KEY: web.AppKey[tuple[Network, ...]] = web.AppKey("trusted_proxies")
"""The parsed --trusted-proxies of the app."""


def _trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip().removeprefix("[").split("]")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in proxies)


def client_address(request: web.BaseRequest, proxies: Sequence[Network]) -> str:
    """The client's address as `proxies` let it be known; the peer's when none is trusted."""
    peer = request.remote or "unknown"
    if not proxies or not _trusted(peer, proxies):
        return peer
    hops = [hop.strip() for value in request.headers.getall("X-Forwarded-For", []) for hop in value.split(",")]
    for hop in reversed(hops):
        if not hop:
            continue
        if not _trusted(hop, proxies):
            return hop[:64]
    return peer if not hops else (hops[0][:64] or peer)
