"""The durable local spool: deliveries that arrive while the database is unreachable.

Each delivery is one JSON file, written aside, fsync'd, renamed into place and the folder
fsync'd, so a 2xx answer means the delivery survives a crash or power cut. Names sort by
arrival time, so draining in name order applies deliveries in the order they came.
"""

from __future__ import annotations

import base64
import fcntl
import itertools
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_SEQUENCE = itertools.count()


class Spool:
    """A folder of pending deliveries, shared by the workers of one host."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _ensure(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def put(self, record: dict[str, Any], body: bytes | None) -> str:
        """Keep one delivery durably; returns its spool id (its file name)."""
        self._ensure()
        name = f"{time.time_ns():020d}-{os.getpid():07d}-{next(_SEQUENCE):06d}"
        document = {**record, "spool_id": name}
        document["body_b64"] = base64.b64encode(body).decode("ascii") if body is not None else None
        data = json.dumps(document, separators=(",", ":")).encode("utf-8")
        temporary = self.directory / f".{name}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temporary, self.directory / f"{name}.json")
        self._sync_directory()
        return name

    def pending(self) -> list[Path]:
        """Spooled files, oldest first."""
        if not self.directory.exists():
            return []
        return sorted(self.directory.glob("*.json"))

    def read(self, path: Path) -> tuple[dict[str, Any], bytes | None]:
        document: dict[str, Any] = json.loads(path.read_bytes())
        encoded = document.pop("body_b64", None)
        return document, base64.b64decode(encoded) if encoded is not None else None

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self._sync_directory()

    def oldest_age_seconds(self, now_ns: int | None = None) -> float:
        """How long the oldest pending delivery has waited (0 when none)."""
        files = self.pending()
        if not files:
            return 0.0
        arrived = int(files[0].name.split("-", 1)[0])
        return max(0.0, ((now_ns or time.time_ns()) - arrived) / 1e9)

    @contextmanager
    def exclusive(self) -> Iterator[bool]:
        """Hold the drain lock if free: only one process drains, so order is kept."""
        self._ensure()
        fd = os.open(self.directory / ".drain.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
