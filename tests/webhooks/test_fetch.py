"""Safe image fetching. DNS is stubbed and a guard fails any test that opens a socket to a non-loopback address."""

from __future__ import annotations

import ipaddress
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from webhooks.fetch import FetchRefused, FetchTransient, fetch_image

IMAGE = b"\xff\xd8\xff\xe0fake-jpeg-bytes" * 10
FAKE_DNS = {
    "internal.example": "10.0.0.1",
    "metadata.example": "169.254.169.254",
    "pinned.example": "127.0.0.1",
    "six.example": "fd00::1",
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
                "/big": (200, {}, b"x" * 5000),
                "/busy": (503, {}, b""),
                "/gone": (404, {}, b""),
            }
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
