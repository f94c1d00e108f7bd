"""The gate in front of the whole app (UI and API): it runs before any route reads a request's body.

- Bodies are bounded: by `Content-Length` at once, and by counting where it is absent (chunked), so
  nothing larger than the cap is ever spooled to disk or held in memory. Uploads may carry
  `RAG_MAX_UPLOAD_MB` × `RAG_MAX_UPLOADS`; everything else (JSON, forms) a small cap.
- With `--auth`, the API and the UI's upload route refuse a request without a login before its body
  is read (FastAPI reads a body before it runs a route's dependencies).
- JSON nested deeper than any request of this app needs is refused (422) before it is parsed.
- Wrong passwords are throttled per client: after a few failures each further attempt must wait,
  twice as long each time (429 with Retry-After), whatever the password.
- It records which user received which file through the UI's upload route, so the upload handler
  takes only files this user really uploaded (never a path the client names); a UI event naming a file
  by URL is refused (Gradio would fetch it from the server).
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field

from starlette.requests import Request

from .auth import Accounts
from .errors import BodyTooLarge, Unauthorized, describe
from .settings import Settings

API = "/api/"
HEALTH = "/api/v1/health"
UPLOAD_ROUTES = ("/api/v1/documents", "/gradio_api/upload")
LOGIN_ROUTES = ("/login", "/login/")
SMALL_BODY = 1 << 20  # JSON and forms: a 60,000-character question is ~180 KB
MULTIPART_SLACK = 1 << 20  # part headers and boundaries around the files
MAX_JSON_DEPTH = 64  # this app's deepest request (a Gradio event with a table) nests under 10
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


def json_depth(body: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest (strings skipped); no parsing, no recursion."""
    depth = deepest = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub(b"", body)):
        if bracket in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0


@dataclass
class LoginThrottle:
    """Per-client back-off after wrong passwords: `free` failures, then 1, 2, 4 … up to `longest` seconds."""

    free: int = 5
    longest: float = 60.0
    forget_after: float = 900.0
    max_clients: int = 10_000
    _state: dict[str, _Failures] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self, client: str) -> float:
        """Seconds this client must still wait before its password is checked again (0: it may try now)."""
        with self._lock:
            f = self._state.get(client)
            if f is None or f.count < self.free:
                return 0.0
            delay = min(self.longest, 2.0 ** (f.count - self.free))
            return max(0.0, f.last + delay - time.monotonic())

    def failed(self, client: str) -> None:
        with self._lock:
            now = time.monotonic()
            if len(self._state) >= self.max_clients:
                for key in [k for k, f in self._state.items() if now - f.last > self.forget_after] or list(self._state)[:1000]:
                    self._state.pop(key, None)
            f = self._state.setdefault(client, _Failures())
            if now - f.last > self.forget_after:
                f.count = 0
            f.count += 1
            f.last = now

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._state.pop(client, None)


class UploadLedger:
    """Files the UI's upload route stored, and for whom; the upload handler takes nothing else."""

    def __init__(self, keep_seconds: float = 6 * 3600, limit: int = 20_000):
        self.keep_seconds, self.limit = keep_seconds, limit
        self._owners: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def record(self, paths: list[str], user: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._owners) + len(paths) > self.limit:
                old = [p for p, (_, t) in self._owners.items() if now - t > self.keep_seconds]
                for p in old or list(self._owners)[: len(paths)]:
                    self._owners.pop(p, None)
            for p in paths:
                self._owners[str(p)] = (user, now)

    def owned(self, path: str, user: str) -> bool:
        with self._lock:
            entry = self._owners.get(str(path))
        return entry is not None and entry[0] == user and time.monotonic() - entry[1] <= self.keep_seconds

    def forget(self, path: str) -> None:
        with self._lock:
            self._owners.pop(str(path), None)


def _refusal(exc: Exception) -> tuple[int, list, bytes]:
    """An error the gate raises itself, answered as the API would (rag.errors.describe)."""
    failure = describe(exc)
    return _json_error(failure.status, failure.code, failure.message, failure.headers)


def _json_error(status: int, code: str, message: str, headers: dict | None = None) -> tuple[int, list, bytes]:
    body = json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False).encode("utf-8")
    raw = [(b"content-type", b"application/json; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    # Close the connection: the server would otherwise read (and drop) the rest of a refused body.
    headers = {"Connection": "close", **(headers or {})}
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    return status, raw, body


async def _answer(send, response: tuple[int, list, bytes]) -> None:
    status, headers, body = response
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Gate:
    """ASGI middleware around the whole app (see the module's docstring)."""

    def __init__(self, app, accounts: Accounts, settings: Settings, ledger: UploadLedger, throttle: LoginThrottle):
        self.app = app
        self.accounts = accounts
        self.ledger = ledger
        self.throttle = throttle
        self.upload_cap = settings.max_upload_mb * settings.max_uploads * 2**20 + MULTIPART_SLACK
        self.upload_mb = settings.max_upload_mb
        self.uploads = settings.max_uploads

    def cap(self, path: str, method: str) -> int:
        return self.upload_cap if method == "POST" and path.rstrip("/") in UPLOAD_ROUTES else SMALL_BODY

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path, method = scope["path"], scope["method"]
        request = Request(scope)  # headers and cookies only: the body stays unread
        client = (scope.get("client") or ("?",))[0]

        # --- who: throttled clients and missing logins are refused before anything is read -------------
        # (A small declared body, a login form, is read first: closing a socket with unread bytes in it
        # makes the kernel reset the connection, and the client may then never see the 429 or 401.)
        async def refuse(response):
            if _small(request.headers.get("content-length")):
                await _read_all(receive)
            return await _answer(send, response)

        is_login = method == "POST" and path in LOGIN_ROUTES
        basic = request.headers.get("authorization", "")[:6].lower() == "basic "
        if self.accounts.enabled and (is_login or basic):
            wait = self.throttle.wait(client)
            if wait > 0:
                retry = str(max(1, round(wait + 0.49)))
                return await refuse(_json_error(
                    429, "too_many_attempts",
                    f"密码错误次数过多，请 {retry} 秒后再试（too many failed logins; retry after {retry} s）",
                    {"Retry-After": retry}))
        user = self.accounts.user(request) if self.accounts.enabled else ""
        if self.accounts.enabled and basic and user is None:
            self.throttle.failed(client)
        elif self.accounts.enabled and basic:
            self.throttle.succeeded(client)
        guarded = (path.startswith(API) and path != HEALTH) or (method == "POST" and path.rstrip("/") == "/gradio_api/upload")
        if self.accounts.enabled and guarded and user is None:
            return await refuse(_refusal(Unauthorized()))

        # --- how much: the body's cap, by Content-Length now or by counting as it is read --------------
        cap = self.cap(path, method)
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                return await _answer(send, _json_error(400, "bad_request", "Content-Length 无效（invalid Content-Length）"))
            if size > cap:
                return await _answer(send, self._too_large(cap))
        counted = {"bytes": 0, "over": False, "complete": method in ("GET", "HEAD", "OPTIONS") and declared is None}

        async def bounded_receive():
            message = await receive()
            if message["type"] == "http.request":
                counted["complete"] = not message.get("more_body", False)
                counted["bytes"] += len(message.get("body", b""))
                if counted["bytes"] > cap:
                    counted["over"] = True
                    raise BodyTooLarge()
            return message

        inner_receive = bounded_receive
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        # FastAPI reads a body without a content type as JSON too. JSON is held in memory to measure its
        # depth, so it gets the small cap on every route (uploads are multipart).
        if method in ("POST", "PUT", "PATCH") and (content_type.endswith("json") or not content_type):
            cap = min(cap, SMALL_BODY)
            if declared is not None and int(declared) > cap:
                return await _answer(send, self._too_large(cap))
            try:
                body = await _read_all(bounded_receive)
            except BodyTooLarge:
                return await _answer(send, self._too_large(cap))
            if json_depth(body) > MAX_JSON_DEPTH:
                return await _answer(send, _json_error(
                    422, "invalid_parameter",
                    f"JSON 嵌套过深（上限 {MAX_JSON_DEPTH} 层）（JSON nested deeper than {MAX_JSON_DEPTH} levels）"))
            if path.startswith("/gradio_api/") and _remote_file(body):
                return await _answer(send, _json_error(
                    422, "invalid_parameter", "文件只能通过上传提供，不能是网址（files must be uploaded, not URLs）"))
            inner_receive = _replay(body, receive)

        # --- the app, watched: too large while reading -> 413; logins and uploads are noted ---------------
        started = {"done": False, "status": 0}
        record_upload = method == "POST" and path.rstrip("/") == "/gradio_api/upload"
        upload_body: list[bytes] = []

        async def watched_send(message):
            if counted["over"]:
                if not started["done"]:
                    started["done"] = True
                    await _answer(send, self._too_large(cap))
                return  # whatever the app says after the cap was hit is dropped
            if message["type"] == "http.response.start":
                started["done"], started["status"] = True, message["status"]
                if not counted["complete"] and declared != "0":
                    # Answered before the whole body came (a refusal): close, or the server reads the rest.
                    message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
                if is_login and self.accounts.enabled:
                    (self.throttle.succeeded if message["status"] == 200 else self.throttle.failed)(client)
            elif message["type"] == "http.response.body" and record_upload and started["status"] == 200:
                upload_body.append(message.get("body", b""))
                if not message.get("more_body"):
                    self._record(b"".join(upload_body), user or "")
            await send(message)

        try:
            await self.app(scope, inner_receive, watched_send)
        except BodyTooLarge:
            if not started["done"]:
                started["done"] = True
                await _answer(send, self._too_large(cap))

    def _too_large(self, cap: int) -> tuple[int, list, bytes]:
        if cap == SMALL_BODY:
            text = f"请求体过大（上限 {cap // 1024} KB）（request body too large）"
        else:
            text = (f"上传过大：一次最多 {self.uploads} 个文件、每个不超过 {self.upload_mb} MB"
                    f"（upload too large: at most {self.uploads} files of {self.upload_mb} MB）")
        return _refusal(BodyTooLarge(text))

    def _record(self, body: bytes, user: str) -> None:
        try:
            paths = json.loads(body)
        except ValueError:
            return
        if isinstance(paths, list):
            self.ledger.record([p for p in paths if isinstance(p, str)], user)


def _remote_file(body: bytes) -> bool:
    """True when a UI event's data names a file by URL: Gradio would fetch it from the server."""
    try:
        stack = [json.loads(body)]
    except ValueError:
        return False
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            where = str(item.get("path") or "").strip().lower()
            if where.startswith(("http://", "https://", "//")) and ("meta" in item or "orig_name" in item or "url" in item):
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


# A refused request with a body this small is read before the answer (see Gate.__call__).
DRAIN_BYTES = 64 * 1024


def _small(declared: str | None) -> bool:
    return declared is not None and declared.isdigit() and int(declared) <= DRAIN_BYTES


async def _read_all(receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(parts)


def _replay(body: bytes, receive):
    """A receive that hands the app the body already read, then passes on what comes next (a disconnect)."""
    sent = {"done": False}

    async def replay():
        if not sent["done"]:
            sent["done"] = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
