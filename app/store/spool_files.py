"""The durable local spool: deliveries that arrive while the database is unreachable.

Each file is written aside, fsync'd, renamed into place and the folder fsync'd, so a 2xx
answer means the delivery survives a crash or power cut. Names sort by arrival time, so
draining in name order applies deliveries in the order they came.

Group commit: a file's two fsyncs cost a journal commit each (~4 ms here, whatever the
size), so the deliveries that threads of one process put while another file is being
written go into the next file together, made durable by the same two fsyncs; each
thread returns (and its sender is answered) only once that file is durable. A file of
one delivery is that delivery's document; a file of several is named `<name>+<n>.json`
and holds `{"spool_id": <name>, "deliveries": [document, ...]}`, each document with a
spool id of its own (`<name>.<i>`), in the order they were put.

A write that cannot complete (disk full, a short write the disk never finishes) raises
SpoolWriteFailed and leaves nothing behind: the web layer then answers 503, never a 202
for a delivery that is not on disk. A file that cannot be read back (truncated, corrupt)
is moved to `quarantine/` so that it never blocks the files behind it.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import itertools
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

_SEQUENCE = itertools.count()
QUARANTINE = "quarantine"
# A temporary file older than this was left by a writer that died mid-write (a live
# writer holds its file for milliseconds); younger ones may still be being written.
STALE_TEMPORARY_SECONDS = 60.0


class SpoolWriteFailed(OSError):
    """The delivery could not be made durable in the spool (nothing of it was kept)."""


class SpoolFileUnreadable(ValueError):
    """A spooled file is not a complete spool document (truncated or corrupt)."""


class _Group:
    """Deliveries that share one file: filled while the previous file is written."""

    def __init__(self) -> None:
        self.documents: list[dict[str, Any]] = []
        self.ids: list[str] = []
        self.error: Exception | None = None
        self.is_finished = False


class Spool:
    """A folder of pending deliveries, shared by the workers of one host."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        # The group commit (see the module's docstring): one file written at a time by this
        # process; the deliveries put meanwhile wait in `_filling` for the next one.
        self._turn = threading.Condition(threading.Lock())
        self._filling: _Group | None = None
        self._is_writing = False

    @property
    def quarantine_directory(self) -> Path:
        return self.directory / QUARANTINE

    def _ensure(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def put(self, record: dict[str, Any], body: bytes | None) -> str:
        """Keep one delivery durably; returns its spool id once it is on disk for good.

        SpoolWriteFailed when it could not be kept (then nothing of it is on disk)."""
        document = {**record}
        document["body_b64"] = base64.b64encode(body).decode("ascii") if body is not None else None
        with self._turn:
            group = self._filling or _Group()
            self._filling = group
            index = len(group.documents)
            group.documents.append(document)
            while not group.is_finished:
                if self._is_writing:
                    self._turn.wait()
                    continue
                # Nobody writes: this thread writes the filling group (its own).
                self._is_writing, self._filling = True, None
                self._turn.release()
                try:
                    self._write_group(group)
                finally:
                    self._turn.acquire()
                    self._is_writing = False
                    group.is_finished = True
                    self._turn.notify_all()
        if group.error is not None:
            raise group.error
        return group.ids[index]

    def _write_group(self, group: _Group) -> None:
        name = f"{time.time_ns():020d}-{os.getpid():07d}-{next(_SEQUENCE):06d}"
        documents = group.documents
        if len(documents) == 1:
            group.ids = [name]
            content: dict[str, Any] = {**documents[0], "spool_id": name}
            final = f"{name}.json"
        else:
            group.ids = [f"{name}.{index}" for index in range(len(documents))]
            kept = [
                {**document, "spool_id": spool_id}
                for document, spool_id in zip(documents, group.ids, strict=True)
            ]
            content = {"spool_id": name, "deliveries": kept}
            final = f"{name}+{len(documents)}.json"
        temporary = self.directory / f".{name}.tmp"
        try:
            data = json.dumps(content, separators=(",", ":")).encode("utf-8")
            self._ensure()
            self._write_durably(temporary, data)
            os.rename(temporary, self.directory / final)
            self._sync_directory()
        except OSError as error:
            with suppress(OSError):
                temporary.unlink(missing_ok=True)
            group.error = SpoolWriteFailed(
                error.errno, f"could not keep the delivery in the spool: {error.strerror}"
            )
        except Exception as error:  # a bug (a record JSON cannot hold): every member learns it
            with suppress(OSError):
                temporary.unlink(missing_ok=True)
            group.error = error

    @staticmethod
    def _write_durably(path: Path, data: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            # os.write may write less than asked (a signal, a nearly full disk): go on from
            # where it stopped; a write that makes no progress at all is a failure.
            while view:
                written = os.write(fd, view)
                if written <= 0:
                    raise OSError(28, "the disk accepted no more bytes")  # ENOSPC
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)

    def pending(self) -> list[Path]:
        """Spooled files, oldest first."""
        if not self.directory.exists():
            return []
        return sorted(self.directory.glob("*.json"))

    def read(self, path: Path) -> tuple[dict[str, Any], bytes | None]:
        """The record and body of a spooled file of one delivery (see read_all)."""
        [one] = self.read_all(path)
        return one

    def read_all(self, path: Path) -> list[tuple[dict[str, Any], bytes | None]]:
        """The record and body of each delivery of a spooled file, in the order they were
        put; SpoolFileUnreadable if the file is not whole."""
        try:
            content = json.loads(path.read_bytes())
            if not isinstance(content, dict) or "spool_id" not in content:
                raise SpoolFileUnreadable(f"{path.name} is not a spool document")
            documents = content.get("deliveries", [content])
            if not isinstance(documents, list) or not documents:
                raise SpoolFileUnreadable(f"{path.name} holds no deliveries")
            return [_document(path, document) for document in documents]
        except (UnicodeDecodeError, json.JSONDecodeError, binascii.Error, TypeError) as error:
            raise SpoolFileUnreadable(f"{path.name} is truncated or corrupt: {error}") from error

    def pending_deliveries(self) -> int:
        """How many deliveries the pending files hold (from their names: no file is read)."""
        return sum(deliveries_in(path) for path in self.pending())

    def quarantine(self, path: Path) -> Path:
        """Move an unreadable file aside, where an operator can look at it."""
        self.quarantine_directory.mkdir(parents=True, exist_ok=True)
        target = self.quarantine_directory / path.name
        os.rename(path, target)
        self._sync_directory()
        return target

    def quarantined(self) -> int:
        """How many files were moved aside as unreadable."""
        if not self.quarantine_directory.exists():
            return 0
        return sum(1 for _ in self.quarantine_directory.glob("*.json"))

    def remove_stale_temporaries(self, now: float | None = None) -> int:
        """Delete temporary files left by writers that died mid-write; how many."""
        if not self.directory.exists():
            return 0
        cutoff = (now if now is not None else time.time()) - STALE_TEMPORARY_SECONDS
        removed = 0
        for path in self.directory.glob(".*.tmp"):
            with suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
        if removed:
            self._sync_directory()
        return removed

    def writable_problem(self, min_free_bytes: int) -> str | None:
        """Why a delivery could not be spooled now (None when it could).

        A real write and fsync of a small file, and room for one more delivery of the
        largest accepted size: a probe that only checks permissions misses a full disk.
        """
        probe = self.directory / f".probe-{os.getpid()}-{next(_SEQUENCE)}.tmp"
        try:
            self._ensure()
            self._write_durably(probe, b"probe")
            probe.unlink()
            free = os.statvfs(self.directory)
        except OSError as error:
            with suppress(OSError):
                probe.unlink(missing_ok=True)
            return f"cannot write: {error.strerror or error}"
        free_bytes = free.f_bavail * free.f_frsize
        if free_bytes < min_free_bytes:
            return f"only {free_bytes} bytes free, {min_free_bytes} needed"
        return None

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self._sync_directory()

    def remove_many(self, paths: list[Path]) -> None:
        """Remove applied files with one directory fsync for all of them."""
        for path in paths:
            path.unlink(missing_ok=True)
        if paths:
            self._sync_directory()

    def oldest_age_seconds(self, now_ns: int | None = None) -> float:
        """How long the oldest pending delivery has waited (0 when none)."""
        files = self.pending()
        if not files:
            return 0.0
        try:
            arrived = int(files[0].name.split("-", 1)[0])
        except ValueError:  # a foreign file name: its age is its own, not an arrival time
            arrived = files[0].stat().st_mtime_ns
        return max(0.0, ((now_ns or time.time_ns()) - arrived) / 1e9)

    def newest_age_seconds(self, now_ns: int | None = None) -> float:
        """How long ago the newest pending delivery arrived (0 when none)."""
        files = self.pending()
        if not files:
            return 0.0
        try:
            arrived = int(files[-1].name.split("-", 1)[0])
        except ValueError:
            arrived = files[-1].stat().st_mtime_ns
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


def deliveries_in(path: Path) -> int:
    """How many deliveries a spool file holds: `<name>+<n>.json` n, else one."""
    _name, plus, count = path.stem.rpartition("+")
    return int(count) if plus and count.isdigit() else 1


def _document(path: Path, document: Any) -> tuple[dict[str, Any], bytes | None]:
    if not isinstance(document, dict) or "spool_id" not in document:
        raise SpoolFileUnreadable(f"{path.name} is not a spool document")
    document = dict(document)
    encoded = document.pop("body_b64", None)
    body = base64.b64decode(encoded, validate=True) if encoded is not None else None
    return document, body
