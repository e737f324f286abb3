"""A small asyncio HTTP/1.1 load generator for what wrk cannot do on its own.

- `run_closed`: exactly N requests over C connections (the alert storm must send exactly
  10,000 deliveries, and wrk only knows durations).
- `run_open`: a constant request rate, open loop, like wrk2 (which Debian does not ship).
  Request i is *scheduled* at start + i/rate and sent then whether or not earlier answers
  have arrived; its latency is measured from the scheduled time, so a stalled server is
  charged for the requests that queued behind the stall (no coordinated omission).

gunicorn's sync workers close the connection after every response, so every request opens
its own connection (as Sentry's senders do) and is read to EOF.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

Build = Callable[[int], bytes]  # request number -> the raw HTTP request


def http_request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    """The bytes of one HTTP/1.1 request with Connection: close."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method in {"POST", "PUT", "PATCH"}:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class Response:
    status: int
    body: bytes


async def fetch(host: str, port: int, raw: bytes, timeout: float = 30.0) -> Response:
    """Send one raw request on a fresh connection; status 0 means no answer (error)."""
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(raw)
            await writer.drain()
            data = await reader.read(-1)
    except (OSError, TimeoutError):
        return Response(0, b"")
    finally:
        if writer is not None:
            writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return Response(0, b"")
    if b"transfer-encoding: chunked" in head.lower():
        body = _unchunk(body)
    return Response(status, body)


def _unchunk(body: bytes) -> bytes:
    out, rest = bytearray(), body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        rest = rest[size + 2 :]
    return bytes(out)


@dataclass
class LoadResult:
    """Latencies in seconds (one per request) and the count of each status (0 = error)."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    duration: float = 0.0
    late_sends: int = 0  # open loop: requests sent more than 10 ms after their schedule
    # Open loop: (latency from the schedule, status) of every request.
    answers: list[tuple[float, int]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.count / self.duration if self.duration else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
        return ordered[rank]

    def count_status(self, low: int, high: int) -> int:
        return sum(n for status, n in self.statuses.items() if low <= status <= high)


async def _closed(
    host: str,
    port: int,
    build: Build,
    count: int,
    connections: int,
    on_response: Callable[[int, Response], None] | None,
) -> LoadResult:
    result = LoadResult()
    next_number = 0

    async def connection() -> None:
        nonlocal next_number
        while next_number < count:
            number = next_number
            next_number += 1
            raw = build(number)
            started = time.perf_counter()
            response = await fetch(host, port, raw)
            result.latencies.append(time.perf_counter() - started)
            result.statuses[response.status] += 1
            if on_response is not None:
                on_response(number, response)

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    result.duration = time.perf_counter() - started
    return result


def run_closed(
    host: str,
    port: int,
    build: Build,
    count: int,
    connections: int,
    on_response: Callable[[int, Response], None] | None = None,
) -> LoadResult:
    """Exactly `count` requests, `connections` at a time, each sent when one finishes."""
    return asyncio.run(_closed(host, port, build, count, connections, on_response))


async def _open(
    host: str,
    port: int,
    build: Build,
    rate: float,
    seconds: float,
    max_in_flight: int,
    timeout: float,
    on_response: Callable[[int, Response], None] | None = None,
) -> LoadResult:
    result = LoadResult()
    total = max(1, int(rate * seconds))
    # max_in_flight 0: no cap at all, every request goes at its time (truly open loop).
    slots = asyncio.Semaphore(max_in_flight or total)
    loop = asyncio.get_running_loop()
    # Build every request before the clock starts: the generator must not fall behind.
    raws = [build(number) for number in range(total)]
    start = loop.time() + 0.05

    async def one(number: int, scheduled: float) -> None:
        async with slots:
            if loop.time() - scheduled > 0.010:
                result.late_sends += 1
            response = await fetch(host, port, raws[number], timeout)
        result.latencies.append(loop.time() - scheduled)
        result.answers.append((result.latencies[-1], response.status))
        result.statuses[response.status] += 1
        if on_response is not None:
            on_response(number, response)

    tasks = []
    for number in range(total):
        scheduled = start + number / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(number, scheduled)))
    await asyncio.gather(*tasks)
    result.duration = loop.time() - start
    return result


def run_open(
    host: str,
    port: int,
    build: Build,
    rate: float,
    seconds: float,
    max_in_flight: int = 256,
    timeout: float = 30.0,
    on_response: Callable[[int, Response], None] | None = None,
) -> LoadResult:
    """`rate` requests per second for `seconds`, latency from each request's schedule.

    `timeout` is the client's: a request unanswered that long counts as status 0 (Sentry
    gives up after 1 s). `max_in_flight=0` never holds a request back for earlier ones.
    """
    return asyncio.run(_open(host, port, build, rate, seconds, max_in_flight, timeout, on_response))
