"""A local stand-in for the DSA Transparency Database's batch endpoint that validates like the real one.

Behaviour follows the database's source (digital-services-act/transparency-database: StatementMultipleAPIController,
GroupedSubmissionsService, PuidNotUniqueMultipleException): bearer token or 401; `statements` must hold 1-100 items;
each statement is validated against the schema and any failure refuses the whole batch with 422
`{"errors": {"statement_<i>": {field: [message]}}}`; then puids repeated in the request or already stored refuse the
whole batch with 422 and `errors.existing_puids`; otherwise every statement is stored and 201 returns them with a uuid.
`fail_next` makes the next requests answer a given status first (e.g. 503), as an outage would.
"""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jsonschema

from compliance.schema import statement_schema


class TransparencyDbServer:
    def __init__(self, token: str = "X|test-token") -> None:
        self.token = token
        self.stored: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []  # {"puids": [...], "status": int}
        self.fail_next: list[int] = []
        self._lock = threading.Lock()
        self._validator = jsonschema.Draft202012Validator(statement_schema(), format_checker=jsonschema.FormatChecker())
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer, puids = server.handle(self.path, self.headers.get("Authorization", ""), body)
                with server._lock:
                    server.requests.append({"puids": puids, "status": status})
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> TransparencyDbServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def handle(self, path: str, authorization: str, body: bytes) -> tuple[int, dict[str, Any], list[str]]:
        if path != "/api/v1/statements":
            return 404, {"message": "Not Found"}, []
        if authorization != f"Bearer {self.token}":
            return 401, {"message": "Unauthenticated."}, []
        try:
            statements = json.loads(body).get("statements")
        except (ValueError, AttributeError):
            return 400, {"message": "malformed JSON"}, []
        puids = [s.get("puid") for s in statements if isinstance(s, dict)] if isinstance(statements, list) else []
        with self._lock:
            if self.fail_next:
                return self.fail_next.pop(0), {"message": "Service Unavailable"}, puids
        if not isinstance(statements, list) or not 1 <= len(statements) <= 100:
            message = "The statements field must have between 1 and 100 items."
            return 422, {"message": message, "errors": {"statements": [message]}}, puids
        errors = {}
        for index, statement in enumerate(statements):
            problems: dict[str, list[str]] = {}
            for error in self._validator.iter_errors(statement):
                field = str(error.absolute_path[0]) if error.absolute_path else "statement"
                problems.setdefault(field, []).append(error.message)
            if problems:
                errors[f"statement_{index}"] = problems
        if errors:
            return 422, {"errors": errors}, puids
        with self._lock:
            seen, clashing = set(), []
            for puid in puids:
                if puid in seen or puid in self.stored:
                    clashing.append(puid)
                seen.add(puid)
            if clashing:
                message = "The platform identifier(s) are not all unique within this call."
                return 422, {"message": message, "errors": {"puid": [message], "existing_puids": clashing}}, puids
            created = []
            for statement in statements:
                record = {**statement, "uuid": str(uuid.uuid4()), "created_at": "2026-12-06 12:00:00"}
                self.stored[statement["puid"]] = record
                created.append(record)
        return 201, {"statements": created}, puids
