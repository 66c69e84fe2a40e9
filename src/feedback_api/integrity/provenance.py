"""Client IP and user-agent hashes for public submissions. Raw IPs are never stored.

The hash is an HMAC-SHA256 under a random per-tenant key (`integrity_settings.salt`), cut to
128 bits: stable, so duplicates and bursts can be counted, but not reversible by hashing all
four billion IPv4 addresses without that key, and not joinable across tenants. IPv6 clients
are hashed by their /64 network, which one device rotates its addresses within.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress


def _digest(salt: bytes, label: bytes, value: str) -> str:
    return hmac.new(salt, label + b"\0" + value.encode(), hashlib.sha256).hexdigest()[:32]


def ip_hash(salt: bytes, ip: str | None) -> str | None:
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None  # a test client or a unix socket: nothing to count by
    if address.version == 6 and address.ipv4_mapped is None:
        value = str(ipaddress.ip_network(f"{address}/64", strict=False).network_address)
    else:
        value = str(getattr(address, "ipv4_mapped", None) or address)
    return _digest(salt, b"ip", value)


def ua_hash(salt: bytes, user_agent: str | None) -> str | None:
    if not user_agent:
        return None
    return _digest(salt, b"ua", user_agent.strip()[:1024])
