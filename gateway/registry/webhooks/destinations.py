"""Where a webhook may call: a webhook must not become a way into the internal network.

By default a destination is an `https` URL whose host resolves only to global addresses: loopback,
link-local (cloud metadata at 169.254.169.254), private, shared, multicast and reserved addresses
are refused, also when wrapped in an IPv6 transition address (::ffff:10.0.0.1, 6to4, NAT64). The
operator lifts this for named hosts and networks with `--webhook-allowed-hosts`
(`hooks.internal, 10.0.0.0/8, 127.0.0.1`): a listed host, or one whose addresses all lie in a listed
network, may be any address and may be called over `http`.

The check runs when a webhook is created or its URL updated (a 400), and again on the addresses a
delivery really connects to (`CheckingResolver`), so a name that resolves differently later (DNS
rebinding) is caught where it matters.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from gateway.settings import Network, parse_networks
from gateway.store.errors import InvalidValue

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class RefusedDestination(Exception):
    """A destination the policy refuses; the message says why."""


def _embedded(address: Address) -> Address:
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour
        if inner is None and address in _NAT64:
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None:
            return inner
    return address


@dataclass(frozen=True)
class DestinationPolicy:
    """The operator's allowance: host names (lower case) and networks exempt from the checks."""

    names: frozenset[str]
    networks: tuple[Network, ...]

    @classmethod
    def parse(cls, text: str | None) -> DestinationPolicy:
        names: set[str] = set()
        networks: list[Network] = []
        for item in (text or "").split(","):
            item = item.strip().lower()
            if not item:
                continue
            try:
                networks.extend(parse_networks(item.strip("[]")))
            except ValueError:
                names.add(item)
        return cls(frozenset(names), tuple(networks))

    def allows_address(self, address: Address) -> bool:
        return _embedded(address).is_global or any(
            address in network or _embedded(address) in network for network in self.networks
        )

    def _listed(self, host: str, addresses: list[Address]) -> bool:
        if host in self.names:
            return True
        return bool(addresses) and all(any(a in n or _embedded(a) in n for n in self.networks) for a in addresses)

    def check_url(self, url: str) -> tuple[str, int]:
        """The URL's host and port when its form is acceptable; its addresses are checked separately."""
        try:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise RefusedDestination(f"Invalid webhook URL {url!r}: {exc}") from None
        if parts.scheme not in ("https", "http"):
            raise RefusedDestination(f"Invalid webhook URL scheme: {parts.scheme!r}. Allowed schemes are: https.")
        host = (parts.hostname or "").lower()
        if not host:
            raise RefusedDestination(f"Webhook URL must include a hostname: {url!r}")
        if parts.username or parts.password:
            raise RefusedDestination("Webhook URL must not carry credentials; use the webhook's secret")
        return host, port

    def check_addresses(self, url: str, host: str, addresses: list[Address]) -> None:
        """Refuse `url` unless its host is listed, or it is https and every address is global."""
        if self._listed(host, addresses):
            return
        if urlsplit(url).scheme != "https":
            raise RefusedDestination(
                "Invalid webhook URL scheme: 'http'. Allowed schemes are: https "
                "(hosts in --webhook-allowed-hosts may use http)."
            )
        for address in addresses:
            if not self.allows_address(address):
                raise RefusedDestination(
                    f"Webhook URL host {host!r} resolves to {address}, a loopback, private, link-local or reserved "
                    "address; the operator allows such destinations with --webhook-allowed-hosts."
                )


def ip_literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def resolve(host: str, port: int) -> list[Address]:
    """Every address `host` resolves to (one for an IP literal)."""
    if (literal := ip_literal(host)) is not None:
        return [literal]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise RefusedDestination(f"Webhook URL host {host!r} does not resolve: {exc}") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


async def check_destination(policy: DestinationPolicy, url: object) -> str:
    """`url` when a webhook may call it now; else `InvalidValue` (a 400) saying why."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidValue(f"Webhook URL cannot be empty or just whitespace: {url!r}")
    try:
        host, port = policy.check_url(url)
        policy.check_addresses(url, host, await resolve(host, port))
    except RefusedDestination as exc:
        raise InvalidValue(str(exc)) from None
    return url


class CheckingResolver(AbstractResolver):
    """aiohttp's resolver, refusing a host whose addresses the policy refuses (checked at connect time).

    aiohttp does not ask a resolver about IP literals; the sender checks those before connecting.
    """

    def __init__(self, policy: DestinationPolicy, url: str) -> None:
        self._inner = DefaultResolver()
        self._policy = policy
        self._url = url

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        addresses = [ipaddress.ip_address(str(item["host"]).split("%")[0]) for item in found]
        self._policy.check_addresses(self._url, host.lower(), addresses)
        return found

    async def close(self) -> None:
        await self._inner.close()
