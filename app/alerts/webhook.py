"""Webhooks: signed JSON, sent only to addresses outside the service's own network.

A delivery is a POST of the event as JSON with two headers:

    X-EST-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">[,v1=…]
    X-EST-Event: <the event's id>

one `v1=` per accepted secret (the current one and, after a rotation, the previous one), so a
receiver that still knows only the previous secret keeps verifying. The event id is the same on
every retry and for every subscriber: receivers drop what they have seen. Redirects are not
followed (one could point inside the network), and the receiver has EST_ALERT_TIMEOUT_S.

A webhook URL must not reach the service's own network: its host is resolved and every address
must be globally routable (no loopback, private, link-local, CGNAT, unspecified, multicast or
reserved address, nor the cloud metadata address) unless EST_ALERT_ALLOW_HOSTS names the host or
a network holding the address. The check is made when a subscription is made and again at every
delivery (DNS answers change), and the delivery connects to the very address it checked.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.core.errors import InvalidInput

SIGNATURE_HEADER = "X-EST-Signature"
EVENT_HEADER = "X-EST-Event"
MAX_URL_LENGTH = 2048
MAX_ANSWER_BYTES = 64 * 1024  # what is read of a receiver's answer before closing
METADATA = (ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"))
SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Target:
    """A checked webhook URL: where the request goes and the address it connects to."""

    url: str
    https: bool
    host: str
    port: int
    path: str
    address: str


@dataclass(frozen=True)
class Answer:
    """What the receiver answered."""

    status: int
    reason: str


def check_url(url: str, allowed: Sequence[str]) -> Target:
    """Check a webhook URL and resolve its host; InvalidInput naming `url` when refused."""
    if len(url) > MAX_URL_LENGTH or any(c.isspace() or not c.isprintable() for c in url):
        raise _refused(f"must be one line of at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _refused(f"{url!r} is no URL") from None
    if parts.scheme not in ("http", "https"):
        raise _refused("must start with https:// (or http://)")
    if not parts.hostname:
        raise _refused("names no host")
    if parts.username is not None or parts.password is not None:
        raise _refused("must not carry a user name or password: the signature proves the sender")
    host = parts.hostname
    port = port or (443 if parts.scheme == "https" else 80)
    addresses = _resolve(host, port)
    for address in addresses:
        why = internal(address)
        if why is not None and not is_allowed(host, address, allowed):
            raise _refused(
                f"{host} is {address}, {why}: webhooks may not reach the service's own network "
                "(an operator may allow it with EST_ALERT_ALLOW_HOSTS)"
            )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url, parts.scheme == "https", host, port, path, str(addresses[0]))


def internal(address: Address) -> str | None:
    """Why an address belongs to a private network, or None when it is globally routable."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA:
        return "the cloud metadata address"
    kinds = (
        ("a loopback address", address.is_loopback),
        ("the unspecified address", address.is_unspecified),
        ("a link-local address", address.is_link_local),
        ("a multicast address", address.is_multicast),
        ("a shared (CGNAT) address", address in SHARED),
        ("a private address", address.is_private),
        ("a reserved address", address.is_reserved),
        ("not globally routable", not address.is_global),
    )
    return next((why for why, hit in kinds if hit), None)


def is_allowed(host: str, address: Address, allowed: Sequence[str]) -> bool:
    """Whether the operator's allow-list names the host or a network holding the address."""
    for entry in allowed:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:  # a host name
            if entry.lower() == host.lower():
                return True
    return False


def _resolve(host: str, port: int) -> list[Address]:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise _refused(f"the host {host} does not resolve") from None
    addresses: list[Address] = []
    for *_, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise _refused(f"the host {host} has no address")
    return addresses


def _refused(why: str) -> InvalidInput:
    return InvalidInput(f"url: {why}", field="url")


def signature(body: bytes, secrets: Sequence[str], timestamp: int) -> str:
    """The X-EST-Signature value: t=<timestamp>, then one v1= per secret."""
    signed = f"{timestamp}.".encode() + body
    macs = [hmac.new(s.encode(), signed, hashlib.sha256).hexdigest() for s in secrets]
    return ",".join([f"t={timestamp}", *(f"v1={mac}" for mac in macs)])


def headers(event_id: int, body: bytes, secrets: Sequence[str]) -> dict[str, str]:
    """The headers of a delivery: JSON, the signature of now, the event's id."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "est-lagesbild alerts",
        SIGNATURE_HEADER: signature(body, secrets, int(time.time())),
        EVENT_HEADER: str(event_id),
    }


def verify(
    header: str,
    body: bytes,
    secrets: Sequence[str],
    tolerance_s: float = 300,
    now: float | None = None,
) -> bool:
    """Whether an X-EST-Signature header signs the body with one of the secrets, recently.

    Written for receivers to copy: it needs only the standard library. `tolerance_s` bounds
    the age of the signature, so that a recorded request cannot be replayed later.
    """
    fields = [part.strip().partition("=") for part in header.split(",")]
    stamps = [value for key, _, value in fields if key == "t"]
    given = [value for key, _, value in fields if key == "v1"]
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    if abs((time.time() if now is None else now) - int(stamps[0])) > tolerance_s:
        return False
    signed = stamps[0].encode() + b"." + body
    expected = [hmac.new(s.encode(), signed, hashlib.sha256).hexdigest() for s in secrets]
    return any(hmac.compare_digest(e, g) for e in expected for g in given)


def post(target: Target, body: bytes, sent_headers: dict[str, str], timeout_s: float) -> Answer:
    """POST a body to a checked target; the answer as it is (redirects are not followed)."""
    connection: http.client.HTTPConnection = (
        _PinnedTLS(target, timeout_s) if target.https else _Pinned(target, timeout_s)
    )
    try:
        connection.request("POST", target.path, body=body, headers=sent_headers)
        response = connection.getresponse()
        response.read(MAX_ANSWER_BYTES)
        return Answer(response.status, response.reason)
    finally:
        connection.close()


class _Pinned(http.client.HTTPConnection):
    """HTTP to a host name, connecting to the address its check resolved."""

    def __init__(self, target: Target, timeout_s: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout_s)
        self.address = target.address

    def connect(self) -> None:
        """Open the socket to the checked address (not to a new DNS answer)."""
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedTLS(http.client.HTTPSConnection):
    """HTTPS to a host name (its certificate checked), at the address its check resolved."""

    def __init__(self, target: Target, timeout_s: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout_s)
        self.address = target.address
        self.tls = ssl.create_default_context()

    def connect(self) -> None:
        """Open the socket to the checked address and speak TLS for the host name."""
        raw = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(raw, server_hostname=self.host)
