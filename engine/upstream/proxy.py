"""Which HTTP proxy an upstream request goes through, read from the environment as curl and httpx read it.

`http_proxy`, `https_proxy`, `all_proxy` and `no_proxy`, in lower or upper case (lower case wins;
an empty lower-case value switches the upper-case one off). `HTTP_PROXY` in upper case is ignored
when `REQUEST_METHOD` is set: under CGI it can come from a request's `Proxy:` header (httpoxy,
CVE-2016-1000110), as urllib, requests and httpx do. `no_proxy` takes `*`, domain names (which
also match their subdomains, with or without a leading dot, as curl does), IP addresses, CIDR
ranges (matched against IP-literal hosts, never after a DNS lookup) and an optional `:port`.
A proxy URL without a scheme is `http://`; without a port, 80 or 443 by scheme (as httpx and
the JVM do; curl alone assumes 1080). Credentials in it become `Proxy-Authorization: Basic`.
"""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import dataclass, field
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

from ..errors import ProxyConfigError as ProxyConfigError  # raised here, defined in errors.py
from .request import Origin

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Proxy:
    """One proxy: where it listens, the header that authenticates to it, and the variable it came from."""

    scheme: str
    host: str
    port: int
    authorization: str | None = field(repr=False)  # holds the credentials: never in a log line
    source: str = ""

    def __str__(self) -> str:
        """host:port, never the credentials."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class _Rule:
    """One `no_proxy` entry: a name (and its subdomains), an address, or a network; any port unless given."""

    name: str | None = None
    address: Address | None = None
    network: Network | None = None
    port: int | None = None

    def matches(self, host: str, address: Address | None, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.name is not None:
            return host == self.name or host.endswith("." + self.name)
        if address is None:
            return False
        if self.address is not None:
            return address == self.address
        assert self.network is not None
        return address.version == self.network.version and address in self.network


class Proxies:
    """The proxy settings of one environment; `select` picks the proxy of an origin (or None)."""

    def __init__(self, proxies: Mapping[str, Proxy | str], rules: tuple[_Rule, ...], bypass_all: bool) -> None:
        self._proxies = proxies  # scheme ("http", "https", "all") -> Proxy, or why it cannot be used
        self._rules = rules
        self._bypass_all = bypass_all

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Proxies | None:
        """The settings, or None when no proxy variable is set (the common case then costs nothing)."""
        values = {key: _variable(environ, key) for key in ("http", "https", "all")}
        proxies = {key: _parse_proxy(*found) for key, found in values.items() if found is not None}
        if not proxies:
            return None
        no_proxy = _variable(environ, "no")
        entries = [e.strip().lower() for e in no_proxy[1].split(",")] if no_proxy else []
        rules = tuple(rule for rule in map(_parse_rule, entries) if rule is not None)
        return cls(proxies, rules, "*" in entries)

    def select(self, origin: Origin) -> Proxy | None:
        """The proxy a request to `origin` goes through; ProxyConfigError if that one is unusable."""
        scheme, host, port = origin
        chosen = self._proxies.get(scheme) or self._proxies.get("all")
        if chosen is None or self._bypassed(host, port):
            return None
        if isinstance(chosen, str):
            raise ProxyConfigError(chosen)
        return chosen

    def _bypassed(self, host: str, port: int) -> bool:
        if self._bypass_all:
            return True
        host = host.lower().rstrip(".").strip("[]")
        address = _address(host)
        return any(rule.matches(host, address, port) for rule in self._rules)


def _variable(environ: Mapping[str, str], key: str) -> tuple[str, str] | None:
    """(name, value) of `<key>_proxy`: lower case first, then upper case unless it is CGI's HTTP_PROXY."""
    lower = f"{key}_proxy"
    if lower in environ:
        value = environ[lower].strip()
        return (lower, value) if value else None
    upper = lower.upper()
    if key == "http" and "REQUEST_METHOD" in environ:
        return None
    value = environ.get(upper, "").strip()
    return (upper, value) if value else None


def _parse_proxy(name: str, value: str) -> Proxy | str:
    """The proxy a variable names, or a sentence saying why it cannot be used (checked when it applies)."""
    url = value if "://" in value else "http://" + value
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return f"{name} is not a valid proxy URL"
    if parts.scheme not in ("http", "https"):
        return f"{name}: {parts.scheme} proxies are not supported (only http:// and https:// ones)"
    if not parts.hostname:
        return f"{name} names no proxy host"
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        authorization = "Basic " + base64.b64encode(pair).decode()
    default = 443 if parts.scheme == "https" else 80
    return Proxy(parts.scheme, parts.hostname, port or default, authorization, name)


def _parse_rule(entry: str) -> _Rule | None:
    if not entry or entry == "*":
        return None
    if "/" in entry:
        try:
            return _Rule(network=ipaddress.ip_network(entry, strict=False))
        except ValueError:
            return None
    host, port = entry, None
    if entry.startswith("["):  # [v6]:port or [v6]
        host, _, rest = entry[1:].partition("]")
        port = _port(rest[1:]) if rest.startswith(":") else None
    elif entry.count(":") == 1:  # name:port or v4:port; a bare v6 address has several colons
        host, _, rest = entry.partition(":")
        port = _port(rest)
    address = _address(host)
    if address is not None:
        return _Rule(address=address, port=port)
    name = host.lstrip("*").lstrip(".").rstrip(".")
    return _Rule(name=name, port=port) if name else None


def _port(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
