"""Which `Host` a request may name: DNS rebinding defence, checked before any route is reached.

A web page on `attacker.example` can point that name at 127.0.0.1 once the browser has loaded it;
its scripts then talk to a gateway on the visitor's loopback as if it were their own origin (read
listings, post forms), and the only trace is the `Host` header, which names the attacker's domain.
So a request whose Host is not allowed is refused (403) before routing; `/health`, `/health/ready`
and `/version` are exempt, as in MLflow, for probes that send whatever Host they like.

Always allowed: `localhost` and names under `.localhost` (browsers resolve them to loopback
themselves), and any IP address literal (a rebinding attack needs a domain name: a browser sends an
IP address as Host only to the server at that address), and the host of `--public-url`. Besides,
`--allowed-hosts` (MLflow's flag and MLFLOW_SERVER_ALLOWED_HOSTS): comma-separated names or
patterns, compared without case; `*` anywhere in one is a wildcard (`*.example.com`), and a pattern
without a port matches the name on any port (`mlflow.example.com:8443` names one port). `*` alone
allows every Host. Unlike MLflow's defaults, private networks are not matched by text (`10.*` there
also admits `10.attacker.example`): an address is allowed because it parses as one.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from urllib.parse import urlsplit

from aiohttp import web

EXEMPT_PATHS = frozenset(("/health", "/health/ready", "/version"))


def _split(host: str) -> tuple[str, str | None]:
    """`name:port` → (name, port); IPv6 keeps its brackets off: `[::1]:5000` → ('::1', '5000')."""
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, rest[1:] if rest.startswith(":") else None
    name, colon, port = host.rpartition(":")
    if not colon or ":" in name:  # no port, or a bare IPv6 address
        return host, None
    return name, port


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class AllowedHosts:
    """The Host values a server accepts (see the module's description)."""

    def __init__(self, patterns: str | None, public_url: str | None = None) -> None:
        self.any = False
        self.patterns: list[tuple[str, str | None]] = []
        for item in (patterns or "").split(","):
            item = item.strip().lower()
            if item == "*":
                self.any = True
            elif item:
                self.patterns.append(_split(item))
        if public_url and (public := urlsplit(public_url).hostname):
            self.patterns.append((public.lower(), None))

    def allows(self, host: str | None) -> bool:
        if self.any or not host:  # no Host at all (HTTP/1.0) names no domain to rebind
            return True
        name, port = _split(host.strip().lower())
        name = name.rstrip(".")
        if name == "localhost" or name.endswith(".localhost") or _is_address(name):
            return True
        return any(
            fnmatch.fnmatchcase(name, pattern) and (wanted is None or wanted == port)
            for pattern, wanted in self.patterns
        )


ALLOWED_HOSTS_KEY = web.AppKey("allowed_hosts", AllowedHosts)


def host_refused(request: web.BaseRequest) -> str | None:
    """Why `request`'s Host is refused (the message to answer with), or None when it is allowed."""
    allowed = request.app.get(ALLOWED_HOSTS_KEY) if isinstance(request, web.Request) else None
    if allowed is None or request.path in EXEMPT_PATHS:
        return None
    host = request.headers.get("Host")
    if allowed.allows(host):
        return None
    return (
        f"Invalid Host header '{(host or '')[:100]}' - possible DNS rebinding attack detected. If this is "
        "the name clients use for this server, start it with --allowed-hosts naming it (or --public-url)."
    )
