"""A small asyncio HTTP/1.1 load generator for what wrk cannot do on its own.

- `run_closed`: exactly N requests over C connections (the alert storm must send exactly
  10,000 deliveries, and wrk only knows durations).
- `run_open`: a constant request rate, open loop, like wrk2 (which Debian does not ship).
  Request i is *scheduled* at start + i/rate and sent then whether or not earlier answers
  have arrived; its latency is measured from the scheduled time, so a stalled server is
  charged for the requests that queued behind the stall (no coordinated omission). With
  `processes` > 1 the schedule is dealt out round-robin to that many forked generators
  (one event loop each, one shared clock), so that one Python process's CPU is not what
  limits the rate: each request still goes at its own time, and `late_sends` says how
  many did not.

gunicorn's sync workers close the connection after every response, so every request opens
its own connection (as Sentry's senders do) and is read to EOF.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
    # Why there is no answer (status 0): "connect_timeout" (the handshake never completed:
    # a full listen backlog drops SYNs), "answer_timeout" (connected, nothing back in
    # time: queued in the accept backlog or in the server), "refused", "reset", "error".
    failure: str | None = None


async def fetch(host: str, port: int, raw: bytes, timeout: float = 30.0) -> Response:
    """Send one raw request on a fresh connection; status 0 means no answer (error)."""
    writer = None
    stage = "connect"
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            stage = "answer"
            writer.write(raw)
            await writer.drain()
            data = await reader.read(-1)
    except TimeoutError:
        return Response(0, b"", f"{stage}_timeout")
    except ConnectionRefusedError:
        return Response(0, b"", "refused")
    except ConnectionResetError:
        return Response(0, b"", "reset")
    except OSError:
        return Response(0, b"", "error")
    finally:
        if writer is not None:
            writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return Response(0, b"", "reset" if not data else "error")
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


@dataclass(frozen=True)
class Sent:
    """One open-loop request: its number, latency from its schedule, status, failure."""

    number: int
    latency: float
    status: int
    failure: str | None = None


@dataclass
class LoadResult:
    """Latencies in seconds (one per request) and the count of each status (0 = error)."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    duration: float = 0.0
    late_sends: int = 0  # open loop: requests sent more than 10 ms after their schedule
    # Open loop: every request, its latency from the schedule and its answer.
    answers: list[Sent] = field(default_factory=list)
    # Open loop: CPU seconds the generator process(es) used, against `duration` wall.
    generator_cpu: float = 0.0

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
    raws: list[bytes],
    numbers: range,
    rate: float,
    start: float,
    max_in_flight: int,
    timeout: float,
) -> LoadResult:
    """Send request `n` of `numbers` at `start` + n / rate (time.monotonic(), which is the
    event loop's clock and the same in every process)."""
    result = LoadResult()
    # max_in_flight 0: no cap at all, every request goes at its time (truly open loop).
    slots = asyncio.Semaphore(max_in_flight or len(raws))
    loop = asyncio.get_running_loop()

    async def one(number: int, scheduled: float) -> None:
        async with slots:
            if loop.time() - scheduled > 0.010:
                result.late_sends += 1
            response = await fetch(host, port, raws[number], timeout)
        latency = loop.time() - scheduled
        result.latencies.append(latency)
        result.answers.append(Sent(number, latency, response.status, response.failure))
        result.statuses[response.status] += 1

    cpu = time.process_time()
    tasks = []
    for number in numbers:
        scheduled = start + number / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(number, scheduled)))
    await asyncio.gather(*tasks)
    result.duration = loop.time() - start
    result.generator_cpu = time.process_time() - cpu
    return result


def _generator(
    connection: Any,
    host: str,
    port: int,
    raws: list[bytes],
    numbers: range,
    rate: float,
    start: float,
    max_in_flight: int,
    timeout: float,
) -> None:
    """One forked generator: its share of the schedule, its result sent back."""
    result = asyncio.run(_open(host, port, raws, numbers, rate, start, max_in_flight, timeout))
    connection.send(result)
    connection.close()


def _merged(parts: list[LoadResult]) -> LoadResult:
    merged = LoadResult()
    for part in parts:
        merged.latencies += part.latencies
        merged.answers += part.answers
        merged.statuses.update(part.statuses)
        merged.late_sends += part.late_sends
        merged.generator_cpu += part.generator_cpu
        merged.duration = max(merged.duration, part.duration)
    merged.answers.sort(key=lambda sent: sent.number)
    return merged


def run_open(
    host: str,
    port: int,
    build: Build,
    rate: float,
    seconds: float,
    max_in_flight: int = 256,
    timeout: float = 30.0,
    processes: int = 1,
) -> LoadResult:
    """`rate` requests per second for `seconds`, latency from each request's schedule.

    `timeout` is the client's: a request unanswered that long counts as status 0 (Sentry
    gives up after 1 s). `max_in_flight=0` never holds a request back for earlier ones
    (per generator process). `processes` generators share the schedule round-robin.
    """
    total = max(1, int(rate * seconds))
    # Build every request before the clock starts: the generator must not fall behind.
    raws = [build(number) for number in range(total)]
    if processes <= 1:
        start = time.monotonic() + 0.05
        return asyncio.run(
            _open(host, port, raws, range(total), rate, start, max_in_flight, timeout)
        )
    context = multiprocessing.get_context("fork")  # the children inherit `raws` unpickled
    start = time.monotonic() + 0.3 + 0.05 * processes  # after every child has started
    pipes, children = [], []
    for index in range(processes):
        receiving, sending = context.Pipe(duplex=False)
        child = context.Process(
            target=_generator,
            args=(sending, host, port, raws, range(index, total, processes), rate, start),
            kwargs={"max_in_flight": max_in_flight, "timeout": timeout},
            daemon=True,
        )
        child.start()
        sending.close()
        pipes.append(receiving)
        children.append(child)
    parts = [pipe.recv() for pipe in pipes]
    for child in children:
        child.join(timeout=30)
    return _merged(parts)
