"""A misbehaving model server on 127.0.0.1 for backend tests: each POST pops a scripted behaviour; ``routes``
answer fixed paths (a GET of /props, /api/show …) the way each server's documented endpoint does."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


def sse_chunks(text: str, size: int = 7, finish: str = "stop") -> list[bytes]:
    events = []
    for i in range(0, len(text), size):
        events.append({"choices": [{"index": 0, "delta": {"content": text[i : i + size]}, "finish_reason": None}]})
    events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    return [f"data: {json.dumps(e)}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"]


class FakeServer:
    def __init__(self) -> None:
        self.behaviours: list[Callable[[BaseHTTPRequestHandler, dict[str, Any]], None]] = []
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.on_request: Callable[[], None] = lambda: None  # e.g. to time each request's arrival
        # "GET /props", "POST /api/show" … -> a behaviour answering every such request (not counted in ``bodies``)
        self.routes: dict[str, Callable[[BaseHTTPRequestHandler, dict[str, Any]], None]] = {}
        self.paths: list[str] = []  # "POST /v1/chat/completions", "GET /props" …, every request in order
        self.all_headers: list[dict[str, str]] = []  # the headers of every request, routed or not
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _routed(self, method: str, body: dict[str, Any]) -> bool:
                key = f"{method} {self.path.split('?')[0]}"
                fake.paths.append(key)
                fake.all_headers.append(dict(self.headers))
                if key not in fake.routes:
                    return False
                try:
                    fake.routes[key](self, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                return True

            def do_GET(self) -> None:
                if not self._routed("GET", {}):
                    status(404, f"no route {self.path}")(self, {})

            def do_POST(self) -> None:
                fake.on_request()
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self._routed("POST", body):
                    return
                fake.bodies.append(body)
                fake.headers.append(dict(self.headers))
                behaviour = fake.behaviours.pop(0) if fake.behaviours else status(500, "no behaviour left")
                try:
                    behaviour(self, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.root = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.url = f"{self.root}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def stream(text: str, finish: str = "stop", delay: float = 0.0, raw: list[bytes] | None = None):
    def behave(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Connection", "close")
        h.end_headers()
        for chunk in raw if raw is not None else sse_chunks(text, finish=finish):
            h.wfile.write(chunk)
            h.wfile.flush()
            if delay:
                time.sleep(delay)
        h.close_connection = True

    return behave


def whole(text: str):
    """A server that ignores `stream` and answers with one JSON body."""

    def behave(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        payload = json.dumps({"choices": [{"message": {"content": text}, "finish_reason": "stop"}],
                              "usage": {"prompt_tokens": 11, "completion_tokens": 5}}).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)

    return behave


def status(code: int, message: str = "", headers: dict[str, str] | None = None):
    def behave(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        payload = json.dumps({"error": {"message": message}}).encode() if message else b""
        h.send_response(code)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)

    return behave


def stall(after: bytes, seconds: float):
    """Start a stream, send a little, then go silent."""

    def behave(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.end_headers()
        h.wfile.write(after)
        h.wfile.flush()
        time.sleep(seconds)

    return behave


def drop():
    """Close the connection without answering (a busy server shedding load)."""

    def behave(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        h.close_connection = True

    return behave


def request_of(body: dict[str, Any]):
    """The `Request` an OpenAI-compatible chat body carries: system, earlier turns, prompt and JSON schema."""
    from recurrentgpt.models.base import Request

    messages = body.get("messages") or []
    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
    turns = [m["content"] for m in messages[1 if system else 0 : -1]]
    history = tuple(zip(turns[0::2], turns[1::2]))
    fmt = body.get("response_format") or {}
    schema = (fmt.get("json_schema") or {}).get("schema") or fmt.get("schema")
    return Request(system, messages[-1]["content"] if messages else "", schema, body.get("max_tokens", 1024),
                   body.get("temperature", 0.8), history)


class ScriptedServer(FakeServer):
    """An OpenAI-compatible server whose answers come from a `ScriptedModel` (well-formed for every schema),
    answered whole with the server's usage. ``fail(n, body)`` may return a behaviour (a 500, a stall …) for
    the n-th request instead; ``answered`` keeps every body answered 200, ``requests`` counts them all."""

    def __init__(self, model: Any = None, fail: Callable[[int, dict[str, Any]], Any] | None = None,
                 usage: bool = True) -> None:
        super().__init__()
        from recurrentgpt import ScriptedModel

        self.model = model or ScriptedModel()
        self.fail = fail
        self.usage = usage
        self.answered: list[dict[str, Any]] = []
        self.requests = 0
        self._count = threading.Lock()
        self.behaviours = _Endless(self)


class _Endless(list):
    """The behaviour queue of a `ScriptedServer`: never empty."""

    def __init__(self, server: ScriptedServer) -> None:
        super().__init__()
        self.server = server

    def __bool__(self) -> bool:
        return True

    def pop(self, index: int = -1):  # type: ignore[override]
        server = self.server

        def behave(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
            with server._count:
                n = server.requests
                server.requests += 1
            other = server.fail(n, body) if server.fail else None
            if other is not None:
                other(h, body)
                return
            request = request_of(body)
            text = server.model.complete(request).text
            payload: dict[str, Any] = {"choices": [{"message": {"role": "assistant", "content": text},
                                                    "finish_reason": "stop"}]}
            if server.usage:
                payload["usage"] = {"prompt_tokens": len(" ".join(m["content"] for m in body["messages"]).split()),
                                    "completion_tokens": len(text.split())}
            data = json.dumps(payload).encode()
            with server._count:
                server.answered.append(body)
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)

        return behave


def reply(payload: Any, code: int = 200, content_type: str = "application/json"):
    """A fixed answer: ``payload`` as JSON (or as it is, when bytes)."""

    def behave(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        h.send_response(code)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    return behave


def ndjson(text: str, size: int = 7, done_reason: str = "stop", prompt_eval_count: int = 0, eval_count: int = 0):
    """Ollama's /api/chat stream: one JSON object a line, the last with ``done`` and the token counts."""

    def behave(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/x-ndjson")
        h.send_header("Connection", "close")
        h.end_headers()
        for i in range(0, len(text), size):
            line = {"model": body.get("model"), "message": {"role": "assistant", "content": text[i : i + size]},
                    "done": False}
            h.wfile.write((json.dumps(line) + "\n").encode())
            h.wfile.flush()
        last = {"model": body.get("model"), "message": {"role": "assistant", "content": ""}, "done": True,
                "done_reason": done_reason, "prompt_eval_count": prompt_eval_count, "eval_count": eval_count}
        h.wfile.write((json.dumps(last) + "\n").encode())
        h.close_connection = True

    return behave
