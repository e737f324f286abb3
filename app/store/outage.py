"""After the database failed to answer, deliveries go straight to the spool until it does.

Without this each delivery during an outage would first wait for its own failure: a new
connection to a server that accepts TCP but never answers takes libpq's connect timeout
(2 s at the least), longer than Sentry waits. One background probe per process finds out
when the database is back; until then the webhook spools at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class OutageGate:
    """Tripped by a failed delivery transaction; reset by the first probe that succeeds."""

    def __init__(self, probe: Callable[[], None], interval_seconds: float = 0.5) -> None:
        self.probe = probe
        self.interval_seconds = interval_seconds
        self._tripped = threading.Event()
        self._lock = threading.Lock()
        self._prober: threading.Thread | None = None

    @property
    def is_tripped(self) -> bool:
        return self._tripped.is_set()

    def trip(self) -> None:
        """The database did not answer: spool until a probe says otherwise."""
        with self._lock:
            self._tripped.set()
            if self._prober is None or not self._prober.is_alive():
                self._prober = threading.Thread(
                    target=self._probe_until_back, name="database-probe", daemon=True
                )
                self._prober.start()

    def _probe_until_back(self) -> None:
        while True:
            threading.Event().wait(self.interval_seconds)
            try:
                self.probe()
            except Exception as error:  # still down: any failure means "not yet"
                log.debug("database probe failed: %s", type(error).__name__)
                continue
            with self._lock:
                self._tripped.clear()
                self._prober = None
            log.warning("the database answers again; deliveries are applied directly")
            return
