"""Calls to an address a tenant chose: a team's webhook, read from a Secret in its namespace.

Such an address is refused unless it is ``https``, its host is on the operator's allowlist, and every
address the host resolves to is public: no loopback, link-local (169.254.169.254, the cloud metadata
service), private (the pod and service networks, ``kubernetes.default.svc``), multicast, reserved or
unspecified address, in IPv4 or IPv6, nor one hidden in an IPv6 address (IPv4-mapped, NAT64, 6to4,
Teredo). The connection goes to the addresses that were checked, not to a second lookup of the name, so
a name that answers differently the second time (DNS rebinding) gains nothing; TLS is still verified
against the host name. Redirects are never followed. Errors name the Secret, never the URL: its path
is the webhook's secret.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from gitopsguard.errors import NotifyError

URL_LIMIT = 2048
Resolver = Callable[[str, int], Sequence[str]]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


@dataclass(frozen=True)
class OutboundPolicy:
    """What the operator allows a team webhook to be."""

    hosts: frozenset[str] = frozenset({"hooks.slack.com"})
    allow_private: bool = False  # also reach loopback, private and link-local addresses (tests, air-gapped Slack)
    ca_file: str | None = None  # CA bundle to verify the webhook's certificate; None: the system's


@dataclass(frozen=True)
class Target:
    """A checked webhook: where to connect, and what to ask for."""

    host: str
    port: int
    path: str
    addresses: tuple[str, ...]  # every address the host resolved to, each one checked


@dataclass(frozen=True)
class Answer:
    status: int
    retry_after: str | None
    body: bytes  # the first few hundred bytes


def system_resolver(host: str, port: int) -> Sequence[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def check_url(url: str, policy: OutboundPolicy, where: str, resolve: Resolver = system_resolver) -> Target:
    """The target of ``url`` if the policy allows it; else NotifyError starting with ``where``."""
    if len(url) > URL_LIMIT or not url.isascii() or not url.isprintable() or " " in url:
        raise NotifyError(f"{where}: the webhook URL is not a plain URL of at most {URL_LIMIT} characters")
    try:
        parts = urlsplit(url)
        host, port = (parts.hostname or "").rstrip("."), parts.port or 443
    except ValueError as error:
        raise NotifyError(f"{where}: the webhook URL cannot be parsed; give https://hooks.slack.com/...") from error
    if parts.scheme != "https":
        raise NotifyError(f"{where}: the webhook URL must use https")
    if parts.username is not None or parts.password is not None:
        raise NotifyError(f"{where}: the webhook URL must not hold a user or password")
    if host not in policy.hosts:
        allowed = ", ".join(sorted(policy.hosts))
        raise NotifyError(f"{where}: the webhook's host is not one gitopsguard may call ({allowed}); ask the operator")
    try:
        addresses = tuple(dict.fromkeys(resolve(host, port)))
    except (OSError, UnicodeError) as error:
        raise NotifyError(f"{where}: the webhook's host does not resolve ({type(error).__name__})") from error
    if not addresses:
        raise NotifyError(f"{where}: the webhook's host does not resolve")
    for address in addresses:
        why = forbidden(address)
        if why and not policy.allow_private:
            raise NotifyError(f"{where}: the webhook's host resolves to {why}, which gitopsguard does not call")
    return Target(host, port, (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), addresses)


def forbidden(address: str) -> str | None:
    """Why ``address`` must not be called (the kind of address, e.g. "a link-local address"), or None."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return "something that is not an IP address"
    for inner in _embedded(ip):
        why = forbidden(str(inner))
        if why:
            return why
    kinds = [("loopback", ip.is_loopback), ("link-local", ip.is_link_local), ("private", ip.is_private),
             ("multicast", ip.is_multicast), ("reserved", ip.is_reserved), ("unspecified", ip.is_unspecified),
             ("non-global", not ip.is_global)]  # fmt: skip
    kind = next((name for name, hit in kinds if hit), None)
    return f"a {kind} address" if kind else None


def _embedded(ip: Address) -> list[Address]:
    """IPv4 addresses carried inside an IPv6 one, which some networks route to the IPv4 address."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    inner: list[Address] = [a for a in (ip.ipv4_mapped, ip.sixtofour) if a is not None]
    if ip.teredo is not None:
        inner.append(ip.teredo[1])
    if ip in _NAT64:
        inner.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return inner


def tls_context(policy: OutboundPolicy) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=policy.ca_file)


def post(target: Target, body: bytes, context: ssl.SSLContext, timeout: float) -> Answer:
    """POST ``body`` (JSON) to the target over TLS, connecting only to its checked addresses."""
    connection = _PinnedHTTPS(target, context, timeout)
    try:
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "gitopsguard"}
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        return Answer(response.status, response.getheader("Retry-After"), response.read(512))
    finally:
        connection.close()


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to ``target.host`` (SNI, certificate check) at the addresses already checked, in turn."""

    def __init__(self, target: Target, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=context)
        self._target, self._tls = target, context

    def connect(self) -> None:
        last: OSError = OSError("no address")
        for address in self._target.addresses:
            try:
                sock = socket.create_connection((address, self._target.port), self.timeout)
            except OSError as error:
                last = error
                continue
            self.sock = self._tls.wrap_socket(sock, server_hostname=self._target.host)
            return
        raise last
