"""Where outbound webhook calls (JSON webhooks, Slack) may go, and the call itself.

An admin types the address of a webhook; without a check, the server would POST to whatever
it names: itself (``127.0.0.1``), the private network it sits in (``10.x``), or the cloud's
metadata service (``169.254.169.254``), which hands out credentials (server-side request
forgery). So by default a destination must be http(s) on a public address:

- on save, ``url_problem`` refuses a non-http(s) address, a ``localhost`` name, or a host
  written as an internal IP address (in any spelling the resolver accepts: ``127.1``,
  ``2130706433``). It does not ask DNS: an answer at save time says nothing about the answer
  at send time, and saving must not wait on, or fail with, a name server;
- on send, ``webhook_post`` resolves the host, refuses it when *any* of its addresses is
  internal, and connects to the address it checked (a second lookup could answer differently:
  DNS rebinding). It never follows a redirect, so a public host cannot bounce the call
  inward.

``settings.OUTBOX_ALLOW_PRIVATE`` (env ``OUTBOX_ALLOW_PRIVATE``, default false) lifts the
address checks, for a self-hosted installation that does post to an internal Slack proxy or
chat server; the scheme and the no-redirect rule stay."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import urllib.parse

from django.conf import settings

SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
# names that mean this machine whatever DNS says (RFC 6761)
LOCAL_NAMES = ("localhost", "localhost.localdomain")


class DestinationRefused(Exception):
    """The address may not be called: a failure that trying again will not mend."""


def _ip_problem(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why ``ip`` is not a public address, or None when it is."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:  # ::ffff:10.0.0.1
        ip = ip.ipv4_mapped
    for test, words in (
        ("is_unspecified", "an unspecified address"),
        ("is_loopback", "a loopback address (this machine)"),
        ("is_link_local", "a link-local address (e.g. cloud metadata)"),
        ("is_multicast", "a multicast address"),
        ("is_private", "a private-network address"),
        ("is_reserved", "a reserved address"),
    ):
        if getattr(ip, test):
            return words
    if not ip.is_global:  # shared (100.64/10, carrier NAT) and other special ranges
        return "not a public address"
    return None


def _numeric_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``host`` as an IP address when it is one in any spelling the resolver takes
    (``127.1``, ``0x7f.1``, ``2130706433``), without asking DNS; None for a name."""
    try:
        info = socket.getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, ValueError):
        return None
    return ipaddress.ip_address(info[0][4][0].split("%", 1)[0])


def url_problem(url: str) -> str | None:
    """Why an outbound call may not go to ``url``, in words naming it; None when it may.
    No DNS lookup (see the module's docstring): the send checks the resolved addresses."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError:
        return f"{url!r} is not a valid URL"
    if parts.scheme not in SCHEMES:
        return f"{url!r} is not an http(s) URL"
    if not host:
        return f"{url!r} names no host"
    if settings.OUTBOX_ALLOW_PRIVATE:
        return None
    host = host.rstrip(".")
    if host in LOCAL_NAMES or host.endswith(".localhost"):
        return f"{host} is this machine; internal addresses are refused ({_HINT})"
    ip = _numeric_ip(host)
    if ip is not None and (why := _ip_problem(ip)):
        return f"{host} is {why}; internal addresses are refused ({_HINT})"
    return None


_HINT = "OUTBOX_ALLOW_PRIVATE allows them"


def resolve_checked(host: str, port: int) -> str:
    """The address to connect to for ``host``: resolved, every answer checked (one
    internal answer refuses the host, since a later lookup might pick it). Raises
    ``DestinationRefused``, or ``OSError`` when the name does not resolve (may mend)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [info[4][0].split("%", 1)[0] for info in infos]
    if not settings.OUTBOX_ALLOW_PRIVATE:
        for address in addresses:
            if why := _ip_problem(ipaddress.ip_address(address)):
                raise DestinationRefused(
                    f"{host} resolves to {address}, {why}; internal addresses are refused ({_HINT})"
                )
    return addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to ``address`` (checked) for the URL's host (the Host header)."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As ``_PinnedHTTPConnection``, with TLS verified for the URL's host name."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address
        self.tls = ssl.create_default_context()

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)


def webhook_post(url: str, *, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST ``body`` to ``url`` once; returns the HTTP status (a redirect is returned, not
    followed). Raises ``DestinationRefused`` for a destination ``url_problem`` or
    ``resolve_checked`` refuses, ``OSError`` for network failures."""
    if problem := url_problem(url):
        raise DestinationRefused(problem)
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    address = resolve_checked(host, port)
    cls = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    connection = cls(host, port, address=address, timeout=timeout)
    path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
    try:
        connection.request("POST", path, body=body, headers=headers)
        with connection.getresponse() as response:
            return response.status
    finally:
        connection.close()
