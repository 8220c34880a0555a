"""Which network hosts a QGIS job may reach: public addresses only, unless the operator allows a
private one (an on-premises PostGIS: `QFC_JOB_ALLOWED_PRIVATE_HOSTS`).

A project file names hosts, and a project file comes from anyone. Without this rule a layer makes
the worker fetch the container-credentials endpoint (169.254.170.2), the AWS stand-in of the
local stack, or any service of the private network, and hands the answer back in the job's
report. The rule is applied twice: in the QGIS child when layer sources are checked (a clear
reason per layer, and the layer is never opened), and in the worker's egress proxy when a
connection is made, to the address checked then (a name that resolves differently the second
time gains nothing).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Names resolve in seconds or not at all: a resolver that hangs must not hold the job.
RESOLVE_SECONDS = 5.0
# IPv6 prefixes that carry an IPv4 address a gateway would reach (6to4, NAT64).
_EMBEDDING_V4 = (ipaddress.ip_network("2002::/16"), ipaddress.ip_network("64:ff9b::/96"),
                 ipaddress.ip_network("64:ff9b:1::/48"))


class Refused(Exception):
    """A source a job may not open; the message says why, in words for the project's owner."""

    code = "refused_datasource"


class Unreachable(Refused):
    """A source that could not be reached anyway (a name that does not resolve): reported as
    QGIS reports a source it could not open, and not tried, so that a later answer cannot
    differ from the one checked."""

    code = "invalid_dataprovider"


def is_public(address: IpAddress) -> bool:
    """Routable on the internet: not loopback, link-local, private, shared (CGNAT), multicast,
    reserved or documentation space, also when wrapped in IPv6."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public(address.ipv4_mapped)
        if address.teredo is not None:
            return False
        for network in _EMBEDDING_V4:
            if address in network:
                return is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class HostPolicy:
    """`allowed_private`: host names, addresses or networks (`db.internal`, `10.1.2.3`,
    `10.1.0.0/16`) a job may reach although they are not public. `refused`: (address, port)
    pairs never reachable, whatever is allowed (the local stack's AWS stand-in)."""

    allowed_private: tuple[str, ...] = ()
    refused: tuple[tuple[str, int], ...] = ()
    _names: frozenset[str] = field(init=False, repr=False, compare=False)
    _networks: tuple[Any, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names, networks = set(), []
        for entry in (item.strip() for item in self.allowed_private):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                names.add(entry.lower().rstrip("."))
        object.__setattr__(self, "_names", frozenset(names))
        object.__setattr__(self, "_networks", tuple(networks))

    def as_dict(self) -> dict[str, list]:
        return {"allowed_private": list(self.allowed_private),
                "refused": [list(pair) for pair in self.refused]}

    @classmethod
    def from_dict(cls, data: dict[str, list] | None) -> HostPolicy:
        data = data or {}
        return cls(tuple(data.get("allowed_private") or ()),
                   tuple((str(host), int(port)) for host, port in data.get("refused") or ()))

    def addresses(self, host: str, port: int, resolved: list[IpAddress] | None = None) -> list[IpAddress]:
        """The addresses to reach `host` on `port` at, every one of them allowed; `resolved`
        when the caller resolved the name already. Raises Refused."""
        name = host.strip().strip("[]").lower().rstrip(".")
        if not name:
            raise Refused("The source names no host.")
        addresses = resolved if resolved is not None else resolve(name)
        if not addresses:
            raise Unreachable(f'Unable to connect to host "{host}".')
        for address in addresses:
            if (str(address), port) in self.refused:
                raise Refused(f'Host "{host}" on port {port} is a service of this server.')
        if name in self._names:
            return addresses
        for address in addresses:
            if not is_public(address) and not any(address in network for network in self._networks):
                # The address is not named: it would tell an attacker about the private network.
                raise Refused(f'Host "{host}" is not a public internet address; jobs reach only'
                              " public hosts and those the server's operator allows.")
        return addresses


_resolver = ThreadPoolExecutor(max_workers=8, thread_name_prefix="resolve")


def resolve(host: str, timeout: float = RESOLVE_SECONDS) -> list[IpAddress]:
    """Every address `host` resolves to (itself if it is an address); [] if it does not
    resolve in `timeout` seconds."""
    return resolve_all({host}, timeout)[host]


def resolve_all(hosts: set[str], timeout: float = RESOLVE_SECONDS) -> dict[str, list[IpAddress]]:
    """`resolve` for many names at once: a project naming many hosts waits for the slowest,
    not for their sum."""
    found: dict[str, list[IpAddress]] = {}
    pending = {}
    for host in hosts:
        try:
            found[host] = [ipaddress.ip_address(host)]
        except ValueError:
            pending[host] = _resolver.submit(_lookup, host)
    deadline = time.monotonic() + timeout
    for host, future in pending.items():
        try:
            found[host] = future.result(timeout=max(deadline - time.monotonic(), 0))
        except (OSError, UnicodeError, FutureTimeout):
            found[host] = []
    return found


def _lookup(host: str) -> list[IpAddress]:
    found: list[IpAddress] = []
    for *_, sockaddr in socket.getaddrinfo(host, None, 0, socket.SOCK_STREAM):
        address = ipaddress.ip_address(sockaddr[0].split("%")[0])
        if address not in found:
            found.append(address)
    return found


_current = HostPolicy()


def current() -> HostPolicy:
    """The policy of the job this process runs (the QGIS child is given its job's)."""
    return _current


def use(policy: HostPolicy) -> None:
    global _current
    _current = policy
