"""Which network addresses outbound tool requests may reach.

A leaf module (standard library only) because two layers need it: `config.py` parses the
`[tools.http] allow`/`deny` entries with it, so a typo is reported at start-up naming the key,
and the `http.request` tool checks every address it connects to against the same rules.

The default is the one a security reviewer of a self-hosted agent expects: anything on the
public internet is reachable, and nothing on this machine, the LAN or the cloud provider's
metadata service is, unless the person names it in `allow`. A model can be steered by any
page it fetches, so "the model asked for it" is never enough to reach a private address.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Cloud instance metadata services (AWS/GCP/Azure/OpenStack, AWS over IPv6, ECS tasks,
#: Alibaba). They hand out credentials to whoever asks from the machine.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200")
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_ULA = ipaddress.ip_network("fc00::/7")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LABEL = r"[a-z0-9_][a-z0-9_-]{0,62}"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


def _embedded_ipv4(address: IPAddress) -> IPAddress:
    """The IPv4 address hidden in an IPv4-mapped, 6to4 or NAT64 IPv6 address, else itself.

    `::ffff:127.0.0.1` reaches 127.0.0.1 on a dual-stack socket, so it must be judged as such.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def address_kind(address: IPAddress) -> str | None:
    """What kind of non-public address this is ("a loopback address", …), None when public."""
    address = _embedded_ipv4(address)
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv4Address):
        if address in _CGNAT:
            return "a CGNAT (shared) address"
        if any(address in net for net in _RFC1918):
            return "a private address"
    elif address in _ULA:
        return "a private (ULA) address"
    if not address.is_global:
        return "a reserved address"
    return None


@dataclass(frozen=True)
class NetRule:
    """One `allow`/`deny` entry: a host name, an IP network, either optionally with a port."""

    text: str
    host: str | None = None
    network: IPNetwork | None = None
    port: int | None = None

    def matches(self, host: str, address: IPAddress, port: int) -> bool:
        """True when a connection to `host` (as the URL names it) at `address:port` fits."""
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            return _embedded_ipv4(address) in self.network or address in self.network
        return self.host == normalise_host(host)


def normalise_host(host: str) -> str:
    """Lower case, no trailing dot, no IPv6 brackets: the form rules are compared in."""
    return host.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{entry!r}: the port must be a number from 1 to 65535")
    return int(text)


def parse_rule(entry: str) -> NetRule:
    """Parse `"10.0.0.0/24"`, `"127.0.0.1:8123"`, `"[::1]:80"`, `"nas.local"`, `"nas.local:5000"`.

    Raises ValueError naming the entry and what is wrong with it.
    """
    text = entry.strip().lower()
    if not text:
        raise ValueError("an empty entry: write a host, host:port or network such as 10.0.0.0/24")
    if "/" in text:
        try:
            return NetRule(entry, network=ipaddress.ip_network(text, strict=False))
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not a network: {exc}") from None
    host, port = text, None
    if text.startswith("["):
        inside, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{entry!r}: write an IPv6 address as [::1] or [::1]:PORT")
        host, port = inside, (_port(rest[1:], entry) if rest else None)
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = _port(port_text, entry)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        host = normalise_host(host)
        if not _HOSTNAME.match(host):
            raise ValueError(
                f"{entry!r} is not a host name, host:port, IP address or network"
            ) from None
        return NetRule(entry, host=host, port=port)
    return NetRule(entry, network=ipaddress.ip_network(address), port=port)


def parse_rules(entries: list[str]) -> tuple[NetRule, ...]:
    return tuple(parse_rule(e) for e in entries)


def allow_hint(host: str, port: int) -> str:
    """The `allow` entry that would open exactly this host and port, as TOML."""
    shown = f"[{host}]" if ":" in host else host
    return f'[tools.http] allow = ["{shown}:{port}"]'


@dataclass(frozen=True)
class NetPolicy:
    """The checked outbound policy: `deny` wins, then `allow`, then "public addresses only"."""

    allow: tuple[NetRule, ...] = ()
    deny: tuple[NetRule, ...] = ()

    @classmethod
    def parse(cls, allow: list[str], deny: list[str]) -> NetPolicy:
        return cls(parse_rules(allow), parse_rules(deny))

    def refusal(self, host: str, address: IPAddress, port: int) -> str | None:
        """Why a connection to `address:port` (for `host`) is refused, or None if it may go."""
        name = normalise_host(host)
        shown = str(address)
        who = shown if name == shown else f"{name} ({shown})"
        for rule in self.deny:
            if rule.matches(name, address, port):
                return f"refused: {who} is denied by [tools.http] deny entry {rule.text!r}"
        kind = address_kind(address)
        if kind is None:
            return None
        if any(rule.matches(name, address, port) for rule in self.allow):
            return None
        return f"refused: {who} is {kind}; allow it with {allow_hint(name, port)}"
