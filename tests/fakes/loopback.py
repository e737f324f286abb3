"""What the HTTP fakes share: a werkzeug server on 127.0.0.1, a record of every request,
and a script of programmed answers ("503 twice, then the normal answer")."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]
    delay: float = 0.0


@dataclass
class ResponseScript:
    """Programmed answers, used up in order before the fake answers normally."""

    answers: deque[Answer] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(
        self,
        status: int,
        body: str | bytes | dict[str, Any] = b"",
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
        delay: float = 0.0,
    ) -> None:
        headers = dict(headers or {})
        if isinstance(body, dict):
            raw = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        else:
            raw = body.encode() if isinstance(body, str) else body
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        with self.lock:
            self.answers.extend(Answer(status, raw, headers, delay) for _ in range(times))

    def next(self) -> Answer | None:
        with self.lock:
            return self.answers.popleft() if self.answers else None

    def clear(self) -> None:
        with self.lock:
            self.answers.clear()


class RecordingApp:
    """A WSGI app that records each request and answers from the script or `answer`."""

    def __init__(self, answer: Callable[[ReceivedRequest], Response]) -> None:
        self.requests: list[ReceivedRequest] = []
        self.script = ResponseScript()
        self._answer = answer
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self.stopping = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        request = Request(environ)
        received = ReceivedRequest(
            method=request.method,
            path=request.path,
            query=request.query_string.decode(),
            headers={key.lower(): value for key, value in request.headers.items()},
            body=request.get_data(),
        )
        with self._arrived:
            self.requests.append(received)
            self._arrived.notify_all()
        programmed = self.script.next()
        if programmed is None:
            response = self._answer(received)
        else:
            if programmed.delay:
                # Interruptible, so stopping the fake never waits for a slow answer.
                self.stopping.wait(programmed.delay)
            response = Response(
                programmed.body, status=programmed.status, headers=programmed.headers
            )
        return response(environ, start_response)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedRequest]:
        """The first `count` requests, waiting up to `timeout` for them to arrive."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.requests)} requests arrived, not {count}")
                self._arrived.wait(left)
            return list(self.requests[:count])


@dataclass
class LoopbackServer:
    server: BaseWSGIServer
    thread: threading.Thread
    app: RecordingApp

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        self.app.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class _QuietHandler(WSGIRequestHandler):
    """The fakes keep their own record; werkzeug's access log would only put the
    receivers' (secret) paths into the log records tests inspect for leaks."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def serve(app: RecordingApp, name: str) -> LoopbackServer:
    """Serve `app` on 127.0.0.1 on a free port, in a daemon thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    # A short poll interval: shutdown() waits for one, once per test.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
    )
    thread.start()
    return LoopbackServer(server, thread, app)
