"""Safe image fetching. DNS is stubbed and a guard fails any test that opens a socket to a non-loopback address."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from transport.fetch import FetchRefused, FetchTransient, embedded_ipv4, fetch_image, resolve_checked

IMAGE = b"\xff\xd8\xff\xe0fake-jpeg-bytes" * 10
FAKE_DNS = {
    "internal.example": "10.0.0.1",
    "metadata.example": "169.254.169.254",
    "pinned.example": "127.0.0.1",
    "six.example": "fd00::1",
    "nat64.example": "64:ff9b::a00:1",  # 10.0.0.1 through NAT64
    "public-nat64.example": "64:ff9b::808:808",  # 8.8.8.8 through NAT64
}


@pytest.fixture(autouse=True)
def network_guard(monkeypatch):
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(sock, address):
        if not ipaddress.ip_address(address[0]).is_loopback:
            raise AssertionError(f"a test tried to connect to {address[0]}")
        return real_connect(sock, address)

    def getaddrinfo(host, port, *args, **kwargs):
        if host in FAKE_DNS:
            family = socket.AF_INET6 if ":" in FAKE_DNS[host] else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (FAKE_DNS[host], port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def server():
    seen_hosts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen_hosts.append(self.headers.get("Host", ""))
            routes = {
                "/image.jpg": (200, {"Content-Type": "image/jpeg"}, IMAGE),
                "/to-metadata": (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b""),
                "/to-internal-name": (302, {"Location": "http://internal.example/x.jpg"}, b""),
                "/to-image": (302, {"Location": "/image.jpg"}, b""),
                "/to-broken-url": (302, {"Location": "http://[::1/x.jpg"}, b""),
                "/big": (200, {}, b"x" * 5000),
                "/busy": (503, {}, b""),
                "/gone": (404, {}, b""),
            }
            if self.path == "/drip":  # a body sent a few bytes at a time, each well inside the read timeout
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                for _ in range(100):
                    self.wfile.write(b"x" * 10)
                    self.wfile.flush()
                    time.sleep(0.05)
                return
            status, headers, body = routes.get(self.path, (404, {}, b""))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen_hosts
    httpd.shutdown()


def fetch(url: str, **kwargs):
    return fetch_image(url, max_bytes=kwargs.pop("max_bytes", 1000), timeout=5, **kwargs)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x.jpg",
        "http://localhost/x.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/x.jpg",
        "http://[::1]/x.jpg",
        "http://internal.example/x.jpg",
        "http://metadata.example/x.jpg",
        "http://six.example/x.jpg",
        "http://224.0.0.1/x.jpg",
        "http://0.0.0.0/x.jpg",
    ],
)
def test_internal_addresses_are_refused_before_connecting(url):
    with pytest.raises(FetchRefused, match="not a public address"):
        fetch(url)


# IPv6 forms whose wrapper Python calls global but which carry an internal IPv4 address (#14).
@pytest.mark.parametrize(
    "url",
    [
        "http://[64:ff9b::7f00:1]/x.jpg",  # NAT64 (RFC 6052) of 127.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",  # NAT64 of the metadata address
        "http://[64:ff9b:1::808:808]/x.jpg",  # local-use NAT64 (RFC 8215): an operator's own translator
        "http://[2002:7f00:1::]/x.jpg",  # 6to4 of 127.0.0.1
        "http://[2002:a00:1::1]/x.jpg",  # 6to4 of 10.0.0.1
        "http://[::127.0.0.1]/x.jpg",  # IPv4-compatible
        "http://[::a00:1]/x.jpg",  # IPv4-compatible 10.0.0.1
        "http://[::ffff:127.0.0.1]/x.jpg",  # IPv4-mapped
        "http://[::ffff:a9fe:a9fe]/x.jpg",  # IPv4-mapped metadata address
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/x.jpg",  # Teredo, client 127.0.0.1 (stored inverted)
        "http://nat64.example/x.jpg",  # a name that resolves to NAT64 of 10.0.0.1
    ],
)
def test_ipv6_wrapped_internal_ipv4_addresses_are_refused(url):
    with pytest.raises(FetchRefused, match="not a public address"):
        fetch(url)
    with pytest.raises(FetchRefused, match="not a public address"):
        fetch(url, allow_loopback=True)  # loopback means 127.0.0.1 or ::1, not a translator's way to it


@pytest.mark.parametrize(
    ("address", "embedded"),
    [
        ("64:ff9b::7f00:1", ["127.0.0.1"]),
        ("2002:7f00:1::", ["127.0.0.1"]),
        ("::127.0.0.1", ["127.0.0.1"]),
        ("::ffff:10.1.2.3", ["10.1.2.3"]),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", ["65.54.227.120", "127.0.0.1"]),  # Teredo: server, client
        ("2606:4700::1111", []),
        ("::1", []),
        ("8.8.8.8", []),
    ],
)
def test_embedded_ipv4_unwraps_every_form(address, embedded):
    assert [str(ip) for ip in embedded_ipv4(ipaddress.ip_address(address))] == embedded


def test_wrapped_public_addresses_are_still_allowed():
    assert resolve_checked("http://public-nat64.example/x.jpg", allow_loopback=False) == "64:ff9b::808:808"
    assert resolve_checked("http://[2002:808:808::1]/x.jpg", allow_loopback=False) == "2002:808:808::1"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x.jpg", "gopher://x/", "http://user:pw@a.b/"])
def test_other_schemes_and_credentials_are_refused(url):
    with pytest.raises(FetchRefused):
        fetch(url)


def test_loopback_only_with_the_explicit_setting(server):
    base, _ = server
    with pytest.raises(FetchRefused):
        fetch(f"{base}/image.jpg")
    assert fetch(f"{base}/image.jpg", allow_loopback=True, max_bytes=10_000) == IMAGE


def test_redirects_are_rechecked_at_every_hop(server):
    base, _ = server
    assert fetch(f"{base}/to-image", allow_loopback=True, max_bytes=10_000) == IMAGE
    with pytest.raises(FetchRefused, match=r"169\.254\.169\.254"):
        fetch(f"{base}/to-metadata", allow_loopback=True)
    with pytest.raises(FetchRefused, match=r"10\.0\.0\.1"):
        fetch(f"{base}/to-internal-name", allow_loopback=True)


def test_connection_goes_to_the_checked_address_with_the_original_host_name(server):
    base, seen_hosts = server
    port = base.rsplit(":", 1)[1]
    assert fetch(f"http://pinned.example:{port}/image.jpg", allow_loopback=True, max_bytes=10_000) == IMAGE
    assert seen_hosts[-1] == f"pinned.example:{port}"


def test_size_cap_and_status_codes(server):
    base, _ = server
    with pytest.raises(FetchRefused, match="over the limit"):
        fetch(f"{base}/big", allow_loopback=True, max_bytes=1000)
    with pytest.raises(FetchTransient, match="503"):
        fetch(f"{base}/busy", allow_loopback=True)
    with pytest.raises(FetchRefused, match="404"):
        fetch(f"{base}/gone", allow_loopback=True)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com:99999/a.png",  # a port no socket can have
        "https://example.com:http/a.png",
        "http://[::1/x.jpg",  # an unclosed IPv6 bracket
        f"http://{'a' * 64}.example/x.jpg",  # a DNS label over 63 characters: IDNA cannot encode it
    ],
)
def test_unusable_urls_are_refused_not_raised(url):
    # Each raised ValueError before, which no caller expected: the upload stayed `queued` (or a callback `pending`).
    with pytest.raises(FetchRefused, match="not a usable"):
        fetch(url)


def test_a_redirect_to_an_unusable_url_is_refused(server):
    base, _ = server
    with pytest.raises(FetchRefused, match="redirect to an unusable URL"):
        fetch(f"{base}/to-broken-url", allow_loopback=True)


def test_a_body_dripped_inside_each_read_timeout_still_ends_at_the_total_deadline(server):
    base, _ = server
    started = time.monotonic()
    with pytest.raises(FetchTransient, match="took over"):
        fetch_image(f"{base}/drip", max_bytes=10_000, timeout=0.5, allow_loopback=True)  # the drip takes 5 s
    assert time.monotonic() - started < 3
