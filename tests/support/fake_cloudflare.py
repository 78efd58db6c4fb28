"""A stand-in for Cloudflare's v4 API at its HTTP boundary: a real HTTP server on loopback that keeps zones and
DNS records in memory, answers in the v4 envelope, records every request, and can be told to fail."""

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

API_PREFIX = "/client/v4"


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: object | None


@dataclass
class ScriptedFailure:
    status: int
    errors: list[dict]
    headers: dict[str, str] = field(default_factory=dict)
    method: str | None = None  # None: whichever request comes next


class FakeCloudflare:
    def __init__(self, api_token: str) -> None:
        self.api_token = api_token
        self.zones: dict[str, str] = {}  # id -> name
        self.records: dict[str, dict] = {}
        self.requests: list[ReceivedRequest] = []
        self._failures: list[ScriptedFailure] = []
        self._after_next_lookup: list[tuple[str, dict]] = []
        self._lock = threading.Lock()
        self.base_url = ""

    # --- test set-up and inspection ---------------------------------------------------------------------------

    def add_zone(self, name: str) -> str:
        zone_id = uuid.uuid4().hex
        self.zones[zone_id] = name
        return zone_id

    def add_record(self, zone_id: str, name: str, rtype: str, content: str, *, proxied: bool = False) -> str:
        return self._store(zone_id, {"name": name, "type": rtype, "content": content, "proxied": proxied, "ttl": 1})

    def add_record_after_next_lookup(self, zone_id: str, name: str, rtype: str, content: str) -> None:
        """Someone else creates the record right after our next look-up answers: the check-then-act race."""
        self._after_next_lookup.append((zone_id, {"name": name, "type": rtype, "content": content}))

    def fail_next(self, status: int, code: int, message: str, *, headers=None, method: str | None = None) -> None:
        self._failures.append(ScriptedFailure(status, [{"code": code, "message": message}], headers or {}, method))

    def requests_for(self, method: str) -> list[ReceivedRequest]:
        return [r for r in self.requests if r.method == method]

    # --- the API ------------------------------------------------------------------------------------------------

    def handle(self, request: ReceivedRequest) -> tuple[int, dict, dict[str, str]]:
        with self._lock:
            self.requests.append(request)
            for failure in self._failures:
                if failure.method in (None, request.method):
                    self._failures.remove(failure)
                    return failure.status, _envelope(None, failure.errors, success=False), failure.headers
            if request.headers.get("authorization") != f"Bearer {self.api_token}":
                return 403, _envelope(None, [{"code": 10000, "message": "Authentication error"}], success=False), {}
            return self._route(request)

    def _route(self, request: ReceivedRequest) -> tuple[int, dict, dict[str, str]]:
        parts = request.path.removeprefix(API_PREFIX).strip("/").split("/")
        if request.method == "GET" and parts == ["zones"]:
            name = request.query.get("name")
            zones = [
                {"id": zid, "name": zname, "status": "active", "type": "full"} for zid, zname in self.zones.items()
            ]
            return 200, _list([z for z in zones if name is None or z["name"] == name]), {}
        if len(parts) >= 3 and parts[0] == "zones" and parts[2] == "dns_records" and parts[1] in self.zones:
            zone_id = parts[1]
            if request.method == "GET" and len(parts) == 3:
                name = request.query.get("name.exact", request.query.get("name"))
                found = [
                    r
                    for r in self.records.values()
                    if r["zone_id"] == zone_id and (name is None or r["name"].lower() == name.lower())
                ]
                answer = _list(found)
                while self._after_next_lookup:
                    self._store(*self._after_next_lookup.pop())
                return 200, answer, {}
            if request.method == "POST" and len(parts) == 3:
                body = request.body if isinstance(request.body, dict) else {}
                clash = [r for r in self.records.values() if r["zone_id"] == zone_id and r["name"] == body.get("name")]
                if clash:
                    error = {"code": 81053, "message": "An A, AAAA, or CNAME record with that host already exists."}
                    return 400, _envelope(None, [error], success=False), {}
                record_id = self._store(zone_id, body)
                return 200, _envelope(self.records[record_id]), {}
            if request.method == "DELETE" and len(parts) == 4:
                if self.records.pop(parts[3], None) is None:
                    return (
                        404,
                        _envelope(None, [{"code": 81044, "message": "Record does not exist."}], success=False),
                        {},
                    )
                return 200, _envelope({"id": parts[3]}), {}
        error = {
            "code": 7003,
            "message": f"Could not route to {request.path}, perhaps your object identifier is invalid?",
        }
        return 404, _envelope(None, [error], success=False), {}

    def _store(self, zone_id: str, fields: dict) -> str:
        record_id = uuid.uuid4().hex
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        self.records[record_id] = {
            "id": record_id,
            "zone_id": zone_id,
            "zone_name": self.zones[zone_id],
            "name": fields.get("name"),
            "type": fields.get("type"),
            "content": fields.get("content"),
            "proxiable": True,
            "proxied": fields.get("proxied", False),
            "ttl": fields.get("ttl", 1),
            "settings": {},
            "meta": {},
            "comment": None,
            "tags": [],
            "created_on": now,
            "modified_on": now,
        }
        return record_id


def _envelope(result, errors=(), *, success: bool = True, result_info: dict | None = None) -> dict:
    body = {"success": success, "errors": list(errors), "messages": [], "result": result}
    if result_info is not None:
        body["result_info"] = result_info
    return body


def _list(items: list[dict]) -> dict:
    info = {"page": 1, "per_page": 100, "count": len(items), "total_count": len(items), "total_pages": 1}
    return _envelope(items, result_info=info)


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def _serve(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        request = ReceivedRequest(
            method=self.command,
            path=url.path,
            query={key: values[-1] for key, values in parse_qs(url.query).items()},
            headers={key.lower(): value for key, value in self.headers.items()},
            body=json.loads(raw) if raw else None,
        )
        status, body, headers = self.server.fake.handle(request)
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeCloudflare) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)


@contextmanager
def running_fake_cloudflare(api_token: str) -> Iterator[FakeCloudflare]:
    fake = FakeCloudflare(api_token)
    server = _Server(fake)
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}{API_PREFIX}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
