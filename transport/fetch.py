"""Fetch an image by URL without letting a platform aim us at internal addresses.

http(s) only. The host is resolved once and every address it resolves to must be public (loopback only where a
setting allows it, for tests and demos); the connection then goes to that checked address (pinned: a second DNS answer
cannot swap in an internal one), with the original host name kept for the Host header, SNI and certificate checks.
Redirects are followed by hand, each hop checked again; the body is streamed under a byte cap with timeouts.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from urllib.parse import urljoin, urlsplit

import certifi
import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

MAX_REDIRECTS = 3
REDIRECT_STATUSES = {301, 302, 303, 307, 308}


class FetchRefused(Exception):
    """Permanent: the URL is not allowed or the response is unusable. Retrying cannot help."""


class FetchTransient(Exception):
    """Temporary: timeouts, connection errors, 5xx, 429. Worth retrying later."""


# IPv6 forms that carry an IPv4 address a packet may end up at; `is_global` judges only the IPv6 wrapper.
NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the last 32 bits
NAT64_LOCAL_USE = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: an operator's own translator, never public
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d (RFC 4291)


def embedded_ipv4(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address wraps: IPv4-mapped, IPv4-compatible, NAT64, 6to4 and Teredo (its server and
    its client, whose bits are stored inverted)."""
    if ip.version == 4:
        return []
    embedded = []
    if ip.ipv4_mapped is not None:
        embedded.append(ip.ipv4_mapped)
    if ip in NAT64_WELL_KNOWN or (ip in IPV4_COMPATIBLE and int(ip) > 1):  # :: and ::1 are judged as they are
        embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        embedded.append(ip.sixtofour)
    if ip.teredo is not None:
        embedded.extend(ip.teredo)
    return embedded


def _check_address(address: str, *, allow_loopback: bool) -> None:
    ip = ipaddress.ip_address(address)
    if ip.is_loopback and allow_loopback:
        return
    if ip.version == 6 and ip in NAT64_LOCAL_USE:
        raise FetchRefused(f"address {address} is not a public address (local-use NAT64)")
    for candidate in (ip, *embedded_ipv4(ip)):
        if not candidate.is_global or candidate.is_multicast:
            wrapped = "" if candidate is ip else f" (it wraps {candidate})"
            raise FetchRefused(f"address {address} is not a public address{wrapped}")


def resolve_checked(url: str, *, allow_loopback: bool) -> str:
    """The address to connect to for `url`, after checking every address its host resolves to. Raises FetchRefused."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port outside 0-65535
    except ValueError as exc:  # an unclosed IPv6 bracket, a port that is no number or out of range
        raise FetchRefused(f"not a usable URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise FetchRefused(f"scheme {parts.scheme!r} is not allowed")
    if not parts.hostname:
        raise FetchRefused("URL has no host")
    if parts.username or parts.password:
        raise FetchRefused("URLs with credentials are not allowed")
    try:
        infos = socket.getaddrinfo(parts.hostname, port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise FetchTransient(f"cannot resolve {parts.hostname}: {exc}") from exc
    except UnicodeError as exc:  # a host name IDNA cannot encode (a label over 63 characters): never resolvable
        raise FetchRefused(f"not a usable host name: {exc}") from exc
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise FetchTransient(f"{parts.hostname} resolves to no address")
    for address in addresses:
        _check_address(address, allow_loopback=allow_loopback)
    return addresses[0]


def pool_for(url: str, address: str, timeout: float) -> urllib3.HTTPConnectionPool:
    """A connection pool to the checked `address` that still speaks to the URL's host name (Host, SNI, certificate)."""
    parts = urlsplit(url)
    timeouts = urllib3.Timeout(connect=timeout, read=timeout)
    if parts.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            address,
            parts.port or 443,
            timeout=timeouts,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            assert_hostname=parts.hostname,
            server_hostname=parts.hostname,
        )
    return urllib3.HTTPConnectionPool(address, parts.port or 80, timeout=timeouts, retries=False)


# The whole fetch (every hop and the body) may take this many times the per-read timeout: a server that sends a byte
# just inside each read's timeout cannot hold a fetch worker for longer.
TOTAL_TIMEOUT_FACTOR = 3


def fetch_image(url: str, *, max_bytes: int, timeout: float, allow_loopback: bool = False) -> bytes:
    deadline = time.monotonic() + TOTAL_TIMEOUT_FACTOR * timeout
    for _ in range(MAX_REDIRECTS + 1):
        address = resolve_checked(url, allow_loopback=allow_loopback)
        parts = urlsplit(url)
        target = parts.path or "/"
        if parts.query:
            target += f"?{parts.query}"
        host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        pool = pool_for(url, address, timeout)
        try:
            response = pool.urlopen(
                "GET",
                target,
                headers={"Host": host_header, "Accept": "image/*", "User-Agent": "ai-image-moderation/1"},
                redirect=False,
                preload_content=False,
            )
        except Urllib3Error as exc:
            raise FetchTransient(f"fetch failed: {exc}") from exc
        try:
            if response.status in REDIRECT_STATUSES:
                try:
                    url = urljoin(url, response.headers.get("location", ""))
                except ValueError as exc:
                    raise FetchRefused(f"redirect to an unusable URL: {exc}") from exc
                continue
            if response.status == 429 or response.status >= 500:
                raise FetchTransient(f"source answered HTTP {response.status}")
            if response.status != 200:
                raise FetchRefused(f"source answered HTTP {response.status}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise FetchRefused(f"image is {declared} bytes, over the limit of {max_bytes}")
            chunks, size = [], 0
            try:
                # read1: what one read of the socket brings (up to 64 KiB), so the deadline is checked between reads.
                while chunk := response.read1(64 * 1024):
                    if time.monotonic() > deadline:
                        raise FetchTransient(f"fetch took over {TOTAL_TIMEOUT_FACTOR * timeout:g} s")
                    size += len(chunk)
                    if size > max_bytes:
                        raise FetchRefused(f"image is over the limit of {max_bytes} bytes")
                    chunks.append(chunk)
            except Urllib3Error as exc:
                raise FetchTransient(f"fetch interrupted: {exc}") from exc
            return b"".join(chunks)
        finally:
            response.release_conn()
            pool.close()
    raise FetchRefused(f"more than {MAX_REDIRECTS} redirects")
