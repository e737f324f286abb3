"""Profile the gunicorn workers with py-spy while a load runs, and summarise the profile.

py-spy samples every worker (`--subprocesses`) from outside, so the server runs its
production code unchanged. The raw collapsed stacks are kept (flamegraph.pl or speedscope
read them); the summary lists where the workers spend their time, by the bridge's own functions
and by the innermost frame, so that a slow path can be named in the findings.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
# Frames where a worker waits rather than computes: the database answering, or accept().
# psycopg sends BEGIN and COMMIT through `_exec_command` and waits for them in compiled
# code (psycopg-binary), so py-spy's innermost Python frame there is `_exec_command`.
WAITING = (
    "Connection.wait",
    "_send_query_prepared",
    "_exec_command",
    "SyncWorker.wait",
    "select (selectors",
)


def _py_spy() -> str | None:
    found = BIN / "py-spy"
    return str(found) if found.exists() else shutil.which("py-spy")


def profile_server(
    process: subprocess.Popen[bytes] | None, outdir: Path, drive: Callable[[], Any]
) -> str:
    """Run `drive()` while py-spy records the server's workers; return a text summary."""
    py_spy = _py_spy()
    if process is None or py_spy is None:
        return "  (py-spy not available: pip install -e '.[bench]')"
    outdir.mkdir(parents=True, exist_ok=True)
    raw = outdir / "profile.txt"
    log = outdir / "py-spy.log"
    command = [py_spy, "record", "--subprocesses", "--rate", "97", "--pid", str(process.pid),
               "--format", "raw", "--output", str(raw)]  # fmt: skip
    with log.open("wb") as log_file:
        recorder = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
        # py-spy attaches within a moment; the load outlasts the attach by far.
        driver = threading.Thread(target=drive)
        driver.start()
        driver.join()
        recorder.send_signal(2)  # SIGINT: py-spy writes its output and exits
        try:
            recorder.wait(timeout=60)
        except subprocess.TimeoutExpired:
            recorder.kill()
    if not raw.exists():
        return f"  (py-spy wrote no profile; see {log})"
    return summarise(raw)


def summarise(raw: Path, top: int = 18) -> str:
    """Where the workers' samples go: bridge functions (inclusive) and innermost frames."""
    inclusive: Counter[str] = Counter()
    innermost: Counter[str] = Counter()
    sql_by_caller: Counter[str] = Counter()
    total = waiting = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        if not any("Flask.__call__" in frame for frame in frames):
            continue  # idle in accept(), or the master process
        total += count
        leaf = frames[-1]
        if any(marker in leaf for marker in WAITING):
            waiting += count
            callers = [f for f in frames if "(app/" in f]
            if callers:
                sql_by_caller[_short(callers[-1])] += count
        else:
            innermost[_short(leaf)] += count
        for frame in set(frames):
            if "(app/" in frame:
                inclusive[_function(frame)] += count
    if total == 0:
        return "  (no request samples)"
    lines = [
        f"  {total} samples inside requests; {waiting / total:.0%} waiting on the database "
        "(or for the CPU the database is using)",
        "  bridge functions, inclusive share of request time:",
    ]
    lines += [f"    {n / total:6.1%}  {name}" for name, n in inclusive.most_common(top)]
    lines.append("  database waits by calling line:")
    lines += [f"    {n / total:6.1%}  {name}" for name, n in sql_by_caller.most_common(10)]
    lines.append("  innermost frames on the CPU:")
    lines += [f"    {n / total:6.1%}  {name}" for name, n in innermost.most_common(12)]
    return "\n".join(lines)


def _short(frame: str) -> str:
    return frame.replace("/work/main/", "")[:110]


def _function(frame: str) -> str:
    # "ingest_delivery (app/services/ingest.py:106)" -> "ingest_delivery (app/services/ingest.py)"
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})"
