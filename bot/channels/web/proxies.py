"""The visitor's own address when the web chat runs behind reverse proxies it trusts (X-Forwarded-For)."""

from __future__ import annotations

import ipaddress
from typing import Iterable

from aiohttp import web


class TrustedProxies:
    """[web] trusted_proxies: only a request from one of them may say, in X-Forwarded-For, whom it came from."""

    def __init__(self, networks: Iterable[str]):
        self.networks = [ipaddress.ip_network(network, strict=False) for network in networks]

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:  # "unknown", a name: not one of ours
            return False
        ip = getattr(ip, "ipv4_mapped", None) or ip  # a dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d
        return any(ip in network for network in self.networks)

    def client(self, request: web.Request) -> str:
        """The address the request came from: the peer's, unless the peer is a trusted proxy; then the right-most
        X-Forwarded-For entry that is not one (each proxy appends whom it heard from, so anything left of that
        entry may have been written by the client itself)."""
        peer = request.remote or ""
        if not self._trusted(peer):
            return peer
        hops = [hop.strip() for header in request.headers.getall("X-Forwarded-For", []) for hop in header.split(",")]
        for hop in reversed(hops):
            if not self._trusted(hop):
                return hop
        return hops[0] if hops else peer  # only our proxies on the way: the first of them is as close as it gets
