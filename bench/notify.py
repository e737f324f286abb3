"""The notification side of the alert storm: how soon the first attempt starts after the
answer to the delivery that caused it, and how many messages one channel gets (issue 14:
p95 <= 1 s; at most storm_threshold one by one + 1 digest).

A signed webhook channel on the storm's service points at the recording receiver of
tests/fakes on loopback, and the real jobs process (`bridge jobs run`) sends from the
outbox while the storm runs. The load generator notes the wall-clock time of every answer
that opened an incident (`on_answer`); the first attempt starts at the row's `created_at`
+ `first_attempt_delay_ms` (the claim that starts it); the delay is the difference.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.fakes.webhook_receiver import start_webhook_receiver

DELAY_P95_TARGET_MS = 1000.0
STORM_THRESHOLD = 10  # the services' default storm_threshold


@contextmanager
def notifying(
    bridge: Callable[..., Any], bin_dir: Path, root: Path, env: dict[str, str], log: Path
) -> Iterator[dict[str, Any]]:
    """A webhook channel on the storm service and the jobs process sending to it."""
    receiver = start_webhook_receiver()
    channel = bridge(
        "channel", "create", "--service", "storm", "--kind", "webhook", "--name", "bench-hook",
        "--url", receiver.url(), "--generate-secret",
    )  # fmt: skip
    with log.open("ab") as out:
        jobs = subprocess.Popen(
            [str(bin_dir / "bridge"), "jobs", "run"], cwd=root, env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 60
        while "scheduler started" not in log.read_text(errors="replace"):
            if jobs.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the jobs process did not start; see {log}")
            time.sleep(0.1)
        yield {"channel": channel, "receiver": receiver, "answered": {}}
    finally:
        jobs.terminate()
        try:
            jobs.wait(timeout=30)
        except subprocess.TimeoutExpired:
            jobs.kill()
            jobs.wait(timeout=10)
        receiver.stop()


def on_answer(state: dict[str, Any]) -> Callable[[int, Any], None]:
    """The load generator's callback: when was each incident's opening delivery answered."""
    answered: dict[int, float] = state["answered"]

    def note(_number: int, response: Any) -> None:
        at = time.time()
        if response.status != 202:
            return
        answer = json.loads(response.body)
        if answer.get("action") in ("triggered", "reopened") and answer.get("incident"):
            answered.setdefault(int(answer["incident"]["id"]), at)

    return note


def _epoch(value: Any) -> float:
    """A timestamp read back by raw SQL: aware on PostgreSQL, naive UTC text on SQLite."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def figures(
    scalar: Callable[..., Any], rows: Callable[..., list[Any]], state: dict[str, Any]
) -> dict[str, Any]:
    """Once the storm's individual notifications have had their chance to go out."""
    channel_id = state["channel"]["id"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        waiting = scalar(
            "SELECT count(*) FROM notifications WHERE channel_id = :id "
            "AND type <> 'incidents.digest' AND status IN ('queued', 'sending')",
            id=channel_id,
        )[0]
        if waiting == 0:
            break
        time.sleep(0.2)
    started = rows(
        "SELECT incident_id, created_at, first_attempt_delay_ms FROM notifications "
        "WHERE channel_id = :id AND type = 'incident.triggered' "
        "AND first_attempt_delay_ms IS NOT NULL",
        id=channel_id,
    )
    answered = state["answered"]
    delays = sorted(
        (_epoch(created) + float(delay) / 1000 - answered[incident]) * 1000
        for incident, created, delay in started
        if incident in answered
    )
    by_type = dict(
        rows(
            "SELECT type, count(*) FROM notifications WHERE channel_id = :id GROUP BY type",
            id=channel_id,
        )
    )
    queued = sum(by_type.values())
    p95 = _percentile(delays, 95)
    return {
        "delays_ms": delays,
        "p50_ms": _percentile(delays, 50),
        "p95_ms": p95,
        "max_ms": delays[-1] if delays else float("nan"),
        "by_type": by_type,
        "per_channel": queued,
        "received": len(state["receiver"].requests),
        "delay_met": bool(delays) and p95 <= DELAY_P95_TARGET_MS,
        "bound_met": queued <= STORM_THRESHOLD + 1 and by_type.get("incidents.digest", 0) <= 1,
    }


def line(found: dict[str, Any]) -> str:
    return (
        f"first attempt after the answer: p50 {found['p50_ms']:.0f} ms, "
        f"p95 {found['p95_ms']:.0f} ms, max {found['max_ms']:.0f} ms "
        f"(n={len(found['delays_ms'])}); per channel {found['per_channel']} notifications "
        f"{found['by_type']} (want <= {STORM_THRESHOLD} + 1), {found['received']} received "
        "so far (the digest is due at the window's end)"
    )


def _percentile(ordered: list[float], share: float) -> float:
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(share / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]
