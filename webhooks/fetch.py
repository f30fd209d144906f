"""Fetch an image by URL without letting a platform aim us at internal addresses.

http(s) only; every address the host resolves to must be public (loopback only where a setting allows it, for tests
and demos); redirects are followed by hand so each hop is checked again; the body is streamed under a byte cap.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urljoin, urlsplit

import requests

MAX_REDIRECTS = 3


class FetchRefused(Exception):
    """Permanent: the URL is not allowed or the response is unusable. Retrying cannot help."""


class FetchTransient(Exception):
    """Temporary: timeouts, connection errors, 5xx, 429. Worth retrying later."""


def _check_address(address: str, *, allow_loopback: bool) -> None:
    ip = ipaddress.ip_address(address)
    if ip.is_loopback and allow_loopback:
        return
    if not ip.is_global or ip.is_multicast:
        raise FetchRefused(f"address {address} is not a public address")


def check_url(url: str, *, allow_loopback: bool) -> None:
    """Raise FetchRefused unless `url` is http(s) and every address its host resolves to is allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FetchRefused(f"scheme {parts.scheme!r} is not allowed")
    if not parts.hostname:
        raise FetchRefused("URL has no host")
    try:
        infos = socket.getaddrinfo(
            parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP
        )
    except socket.gaierror as exc:
        raise FetchTransient(f"cannot resolve {parts.hostname}: {exc}") from exc
    for info in infos:
        _check_address(str(info[4][0]), allow_loopback=allow_loopback)


def fetch_image(url: str, *, max_bytes: int, timeout: float, allow_loopback: bool = False) -> bytes:
    session = requests.Session()
    session.trust_env = False  # never route through an environment proxy that could reach internal hosts
    for _ in range(MAX_REDIRECTS + 1):
        check_url(url, allow_loopback=allow_loopback)
        try:
            response = session.get(url, stream=True, timeout=timeout, allow_redirects=False)
        except requests.RequestException as exc:
            raise FetchTransient(f"fetch failed: {exc}") from exc
        with response:
            if response.is_redirect:
                url = urljoin(url, response.headers.get("location", ""))
                continue
            if response.status_code == 429 or response.status_code >= 500:
                raise FetchTransient(f"source answered HTTP {response.status_code}")
            if response.status_code != 200:
                raise FetchRefused(f"source answered HTTP {response.status_code}")
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FetchRefused(f"image is {declared} bytes, over the limit of {max_bytes}")
            chunks, size = [], 0
            try:
                for chunk in response.iter_content(64 * 1024):
                    size += len(chunk)
                    if size > max_bytes:
                        raise FetchRefused(f"image is over the limit of {max_bytes} bytes")
                    chunks.append(chunk)
            except requests.RequestException as exc:
                raise FetchTransient(f"fetch interrupted: {exc}") from exc
            return b"".join(chunks)
    raise FetchRefused(f"more than {MAX_REDIRECTS} redirects")
