"""The overload scenario (issue 17): open loop at 3x the measured maximum, 1 s client timeout.

Sentry waits one second for an answer and never retries an internal integration, so the
bridge must answer nearly every delivery within that second even when offered more than
it can apply: it applies what it can and keeps the rest in the durable spool (answered
202 "spooled"), which the jobs process, running throughout, drains in batches.

Reported: the share of deliveries answered 2xx within 1 s of their scheduled send (target
>= 99 %; a send that never reached the server is a miss too, and is counted apart); once
the spool is empty, the storm check against what the server *stored* (every stored
delivery applied exactly once: exact incidents, the sum of event counts equal to the
distinct deliveries applied, nothing left unfinished, every 2xx answer's delivery among
the applied); how long after the end of the load the spool was empty (target <= 60 s)
and the drain's own rate (from the jobs process's log); and the app's own count of
deliveries applied but answered past the sender's 1-second deadline (target 0), with its
admission decisions, read from /metrics. The generator's own CPU and how many of its
sends left late say whether the generator, not the server, was the limit.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import loadgen
from bench.payloads import signed_bodies, write_wrk_file

OVERLOAD_FACTOR = 3.0
OVERLOAD_ISSUES = 100
ANSWER_TARGET = 0.99
DRAIN_TARGET_SECONDS = 60.0
OVERLOAD_ISSUE_BASE = 4_800_000_000
_DRAIN_LINE = re.compile(
    r"spool: applied (\d+), already applied (\d+)(?:, stored refused (\d+))?.*? in ([0-9.]+) s "
    r"\((\d+) transactions"
)
_REQUEST_ID = re.compile(rb"\r\nRequest-ID: ([^\r]+)\r\n")
# What a stored delivery came to when it was applied to an incident (not refused, failed,
# left unfinished or a duplicate of an applied one).
_APPLIED = ("triggered", "deduplicated", "reopened", "acknowledged", "resolved", "ignored")
_METRIC = re.compile(r"^(bridge_[a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$", re.MULTILINE)


def jobs_process(bin_dir: Path, root: Path, env: dict[str, str], log: Path) -> Any:
    """`bridge jobs run` beside the server, its log in `log`; started when it says so."""
    with log.open("ab") as out:
        jobs = subprocess.Popen(
            [str(bin_dir / "bridge"), "jobs", "run"], cwd=root, env=env, stdout=out, stderr=out
        )
    deadline = time.monotonic() + 60
    while "scheduler started" not in log.read_text(errors="replace"):
        if jobs.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the jobs process did not start; see {log}")
        time.sleep(0.1)
    return jobs


def stop(process: Any) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def drain_figures(log: Path) -> dict[str, float]:
    """What the jobs process's spool drain logged: deliveries, seconds, transactions, rate."""
    applied = seconds = transactions = 0.0
    for found in _DRAIN_LINE.finditer(log.read_text(errors="replace")):
        applied += int(found.group(1)) + int(found.group(2)) + int(found.group(3) or 0)
        seconds += float(found.group(4))
        transactions += int(found.group(5))
    return {
        "drained": applied,
        "drain_seconds": seconds,
        "transactions": transactions,
        "rate": applied / seconds if seconds else 0.0,
    }


def scrape(base_url: str) -> dict[str, float]:
    """The bridge's counters from /metrics, summed over workers: name{labels} -> value."""
    deadline = time.monotonic() + 120
    while True:  # a server still working through a backlog answers late
        try:
            with urllib.request.urlopen(f"{base_url}/metrics", timeout=10) as answer:  # noqa: S310
                text = answer.read().decode()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
    return {f"{m.group(1)}{m.group(2) or ''}": float(m.group(3)) for m in _METRIC.finditer(text)}


def overload_scenario(
    stack: Any,
    make_server: Callable[[dict[str, str], Path], Any],
    serving: Callable[[Any], Any],
    wait_for_spool: Callable[[Path, float], tuple[int, float]],
    say: Callable[[str], None],
    bin_dir: Path,
    root: Path,
    maximum_rate: float,
    seconds: float,
    generators: int = 1,
    controls: dict[str, Callable[[str, Path], Any]] | None = None,
    profile: Callable[[Any, Callable[[], Any]], str] | None = None,
) -> dict[str, Any]:
    rate = OVERLOAD_FACTOR * maximum_rate
    total = max(1, int(rate * seconds))
    variants = max(1, -(-total // OVERLOAD_ISSUES))
    stack.bridge("service", "create", "Overload")
    secret = secrets.token_hex(32)
    made = stack.bridge("integration", "create", "--service", "overload", "--secret", secret)
    integration = made["id"]
    path = f"/api/integrations/sentry?integrationId={integration}"
    bodies = stack.workdir / "overload.bodies"
    write_wrk_file(bodies, signed_bodies(secret, OVERLOAD_ISSUES, variants, OVERLOAD_ISSUE_BASE))
    from bench.run import delivery_builder  # the same requests as every other scenario

    build = delivery_builder(path, bodies)
    # A spool of its own: what earlier phases left there is not this scenario's backlog.
    spool = stack.workdir / "overload-spool"
    env = {**stack.env, "BRIDGE_SPOOL_PATH": str(spool)}
    jobs_log = stack.workdir / "jobs-overload.log"
    say(
        f"{stack.kind}: overload, open loop at {OVERLOAD_FACTOR:.0f}x the max = {rate:.0f} "
        f"req/s for {seconds:.0f} s ({total:,} deliveries over {OVERLOAD_ISSUES} issues, "
        f"1 s client timeout, {generators} generator process(es), the jobs process draining "
        "the spool)"
    )

    def offer(port: int) -> loadgen.LoadResult:
        """The open loop: every request at its time, given up after 1 s like Sentry."""
        return loadgen.run_open(
            "127.0.0.1", port, build, rate, seconds, max_in_flight=0, timeout=1.0,
            processes=generators,
        )  # fmt: skip

    jobs = jobs_process(bin_dir, root, env, jobs_log)
    try:
        with serving(make_server(env, stack.workdir / "gunicorn-overload.log")) as server:
            result = offer(server.port)
            ended = time.monotonic()
            waiting, _waited = wait_for_spool(spool, DRAIN_TARGET_SECONDS + 60)
            drained_after = time.monotonic() - ended
            # After the drain: by then the server has answered (or spooled) every request
            # it had queued, the abandoned ones too, so the late count is complete.
            metrics = scrape(server.base_url)
            if profile is not None:
                # A further run of the same load while py-spy samples the workers (after
                # the figures: the sampler takes CPU of its own).
                profiled = profile(server, lambda: offer(server.port))
    finally:
        stop(jobs)
    within = _within(result)
    # Before the controls: the ceiling's server stores rows of its own in the same table.
    stored = storm_check(stack, integration, result, build)
    # The controls: each a server (made from the integration's secret and a log path)
    # offered the same requests at the same rate; the share each answered 2xx in 1 s.
    control_shares: dict[str, float] = {}
    for name, make_control in (controls or {}).items():
        log = stack.workdir / f"gunicorn-overload-{name.replace(' ', '-')}.log"
        with serving(make_control(secret, log)) as control:
            offered = offer(control.port)
        control_shares[name] = _within(offered) / total
        say(f"  control  {name} offered the same: {control_shares[name]:.2%} within 1 s")
    late = metrics.get("bridge_deliveries_answered_late_total", 0.0)
    admissions = {
        name.split('decision="', 1)[1].rstrip('"}'): value
        for name, value in metrics.items()
        if name.startswith("bridge_admissions_total{")
    }
    drain = drain_figures(jobs_log)
    share = within / total
    failures: dict[str, int] = {}
    for sent in result.answers:
        if sent.failure is not None:
            failures[sent.failure] = failures.get(sent.failure, 0) + 1
    out = {
        "rate": rate,
        "seconds": seconds,
        "sent": total,
        "answered_2xx_within_1s": within,
        "share_within_1s": share,
        "timeouts": result.statuses.get(0, 0),
        "statuses": dict(result.statuses),
        "failures": failures,
        "p50": result.percentile(50),
        "p99": result.percentile(99),
        "late_sends": result.late_sends,
        "generators": generators,
        "generator_cpu_share": result.generator_cpu / result.duration if result.duration else 0,
        **stored,
        "still_waiting": waiting,
        "drained_after_seconds": drained_after,
        "drained_in_time": waiting == 0 and drained_after <= DRAIN_TARGET_SECONDS,
        "late_answers": late,
        "admissions": admissions,
        "drain": drain,
        "controls": control_shares,
        "profile": profiled if profile is not None else None,
    }
    say(f"  overload {line(out)}")
    return out


def _within(result: Any) -> int:
    """Requests answered 2xx within the sender's second of their scheduled send."""
    return sum(1 for sent in result.answers if 200 <= sent.status < 300 and sent.latency <= 1.0)


def storm_check(
    stack: Any, integration: str, result: loadgen.LoadResult, build: Callable[[int], bytes]
) -> dict[str, Any]:
    """What the server stored, checked: each stored delivery applied exactly once, every
    2xx answer's delivery applied; the sends that never arrived counted apart."""
    rows = stack.rows(
        "SELECT request_id, decision FROM deliveries WHERE integration_id = :id", id=integration
    )
    stored_ids = {request_id for request_id, _decision in rows}
    applied_ids = {request_id for request_id, decision in rows if decision in _APPLIED}
    # A delivery stored twice (its answer was cut off, it was spooled and applied live):
    # one record applied, the other a duplicate, never two applied.
    applied_rows = sum(1 for _request_id, decision in rows if decision in _APPLIED)
    unfinished = sum(
        1 for _request_id, decision in rows if decision not in (*_APPLIED, "duplicate_delivery")
    )
    incidents, events = stack.scalar(
        "SELECT count(*), coalesce(sum(event_count), 0) FROM incidents i "
        "JOIN services s ON s.id = i.service_id WHERE s.slug = 'overload'"
    )
    spooled = stack.scalar(
        "SELECT count(*) FROM deliveries WHERE integration_id = :id AND spool_id IS NOT NULL",
        id=integration,
    )[0]
    answered_2xx = [sent.number for sent in result.answers if 200 <= sent.status < 300]
    not_applied = sum(1 for number in answered_2xx if _request_id(build(number)) not in applied_ids)
    exact = (
        incidents == OVERLOAD_ISSUES
        and events == len(applied_ids) == applied_rows == len(stored_ids)
        and unfinished == 0
        and not_applied == 0
    )
    return {
        "stored": len(stored_ids),
        "stored_rows": len(rows),
        "applied": len(applied_ids),
        "unfinished": unfinished,
        "answered_2xx": len(answered_2xx),
        "answered_2xx_not_applied": not_applied,
        "never_arrived": result.count - len(stored_ids),
        "incidents": incidents,
        "events": events,
        "exact": exact,
        "spooled": spooled,
    }


def _request_id(raw: bytes) -> str:
    found = _REQUEST_ID.search(raw)
    return found.group(1).decode("latin-1") if found else ""


def line(out: dict[str, Any]) -> str:
    drain = out["drain"]
    waiting = f" ({out['still_waiting']} still waiting)" if out["still_waiting"] else ""
    exact = "exact" if out["exact"] else "NOT exact"
    return (
        f"{out['share_within_1s']:.2%} answered 2xx within 1 s ({out['answered_2xx_within_1s']:,}"
        f" of {out['sent']:,} at {out['rate']:.0f}/s; p50 {out['p50'] * 1000:.0f} ms, p99 "
        f"{out['p99'] * 1000:.0f} ms; statuses {out['statuses']}; no answer: "
        f"{out['failures']}; late sends {out['late_sends']}, {out['generators']} generator(s) "
        f"at {out['generator_cpu_share']:.0%} of a core); stored {out['stored']:,} "
        f"({out['never_arrived']:,} never arrived), {out['incidents']} incidents / "
        f"{out['events']:,} events for {out['applied']:,} applied (want {OVERLOAD_ISSUES} / "
        f"every stored delivery once; {out['unfinished']} unfinished, "
        f"{out['answered_2xx_not_applied']} answered 2xx but not applied: {exact});"
        f" {out['spooled']:,} spooled, spool empty {out['drained_after_seconds']:.1f} s after "
        f"the load{waiting};"
        f" drain {drain['rate']:.0f} deliveries/s ({drain['drained']:.0f} in "
        f"{drain['drain_seconds']:.1f} s, {drain['transactions']:.0f} transactions); applied "
        f"but answered after 1 s: {out['late_answers']:.0f}; admissions {out['admissions']}"
        + "".join(
            f"; the same open loop, {name}: {share:.2%} within 1 s"
            for name, share in out.get("controls", {}).items()
        )
    )


def targets(out: dict[str, Any]) -> list[tuple[str, bool]]:
    return [
        ("overload: >= 99% answered 2xx within 1 s", out["share_within_1s"] >= ANSWER_TARGET),
        ("overload: every stored delivery applied once", out["exact"]),
        ("overload: spool drained <= 60 s after", out["drained_in_time"]),
        ("overload: none applied after its 1 s", out["late_answers"] == 0),
    ]
