"""What a test's spawned processes run, each as another node of the bridge.

A spawned child imports the module of its target before running it: this one imports only
what the target needs, not a test module and the whole app behind it (seconds of CPU per
child on a loaded host).
"""

from __future__ import annotations

from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

from app.store.shared_limits import RedisRateLimitStore


def hit_shared_bucket(
    url: str, prefix: str, count: int, start: Barrier, results: Queue[int]
) -> None:
    """Try `count` acquisitions of the bucket "shared" (20 a minute) once every node is up,
    and put how many were admitted."""
    node = RedisRateLimitStore(url, key_prefix=prefix)
    start.wait(timeout=60)  # every process is up (spawned, imported): all go at once
    results.put(sum(node.acquire("shared", 20, 60.0, 0.0).is_allowed for _ in range(count)))
