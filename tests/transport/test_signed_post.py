"""Signed callbacks on the wire: only the status is read, whatever the platform's endpoint sends back."""

from __future__ import annotations

import base64
import gzip
import threading
import time
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from transport.signed_post import post_signed

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
BOMB = gzip.compress(b"\0" * (200 * 1024 * 1024), compresslevel=9)  # 200 MB of zeros in about 200 KB


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            if self.path == "/bomb":
                self.send_header("Content-Length", str(len(BOMB)))
                self.end_headers()
                self.wfile.write(BOMB)
                return
            self.send_header("Content-Length", "100")  # /drip: a byte every 0.1 s, each well inside the read timeout
            self.end_headers()
            try:
                for _ in range(100):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:  # the client hung up: what it should do
                pass

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _post(url: str):
    return post_signed(url, b'{"type": "upload.tagged"}', secrets=[SECRET], event_id="msg_1", timeout=1.0,
                       allow_loopback=True)  # fmt: skip


def test_a_response_body_dripped_in_does_not_hold_the_worker(endpoint):
    started = time.monotonic()
    result = _post(f"{endpoint}/drip")
    assert result.delivered and result.status_code == 200
    assert time.monotonic() - started < 2, "the 10 s body is not waited for"


def test_a_compressed_response_body_is_never_inflated(endpoint):
    tracemalloc.start()
    try:
        result = _post(f"{endpoint}/bomb")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.delivered
    assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB: the 200 MB body was inflated"
