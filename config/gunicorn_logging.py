"""gunicorn's logger, with an access line that costs only what its format uses.

For every request gunicorn's `Logger.atoms` builds a dictionary of all its atoms, every
request header, every response header and every WSGI environ variable (some forty
formatted keys), of which config/gunicorn.conf.py's format reads nine. On the cheap path
of an overloaded server (a delivery spooled and answered 202) that was a fifth of a
request's CPU. `AccessLogger` builds the atoms the configured format names and nothing
else; the line it writes is the same, character for character
(tests/unit/test_gunicorn_logging.py compares the two). A format naming an atom it does
not know is served by gunicorn's own `atoms`.
"""

from __future__ import annotations

import os
import re
from typing import Any

from gunicorn.glogging import Logger

# %(x)s or %({name}i)s in an access log format.
_ATOM = re.compile(r"%\((\{[^}]*\}[ioe]|[A-Za-z])\)")


def _status(resp: Any) -> Any:
    status = resp.status
    return status.split(None, 1)[0] if isinstance(status, str) else status


def _milliseconds(elapsed: Any) -> int:
    return int(elapsed.seconds * 1000 + int(elapsed.microseconds / 1000))


# The atoms built on their own: name -> how, from (logger, resp, environ, elapsed).
_SIMPLE: dict[str, Any] = {
    "h": lambda log, resp, environ, elapsed: environ.get("REMOTE_ADDR", "-"),
    "t": lambda log, resp, environ, elapsed: log.now(),
    "m": lambda log, resp, environ, elapsed: environ.get("REQUEST_METHOD"),
    "U": lambda log, resp, environ, elapsed: environ.get("PATH_INFO"),
    "q": lambda log, resp, environ, elapsed: environ.get("QUERY_STRING"),
    "H": lambda log, resp, environ, elapsed: environ.get("SERVER_PROTOCOL"),
    "s": lambda log, resp, environ, elapsed: _status(resp),
    "B": lambda log, resp, environ, elapsed: getattr(resp, "sent", None),
    "f": lambda log, resp, environ, elapsed: environ.get("HTTP_REFERER", "-"),
    "a": lambda log, resp, environ, elapsed: environ.get("HTTP_USER_AGENT", "-"),
    "M": lambda log, resp, environ, elapsed: _milliseconds(elapsed),
    "p": lambda log, resp, environ, elapsed: f"<{os.getpid()}>",
}


class AccessLogger(Logger):  # type: ignore[misc]  # gunicorn is untyped
    """gunicorn's Logger; `atoms` builds only the configured format's atoms."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        named = set(_ATOM.findall(cfg.access_log_format or ""))
        self._simple = [name for name in named if not name.startswith("{")]
        self._response_headers = {
            name[1:-2].lower() for name in named if name.startswith("{") and name.endswith("}o")
        }
        others = {name for name in named if name.startswith("{") and not name.endswith("}o")}
        self._own = not others and all(name in _SIMPLE for name in self._simple)

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> Any:
        if not getattr(self, "_own", False):
            return super().atoms(resp, req, environ, request_time)
        atoms = {name: _SIMPLE[name](self, resp, environ, request_time) for name in self._simple}
        wanted = self._response_headers
        if wanted:
            headers = resp.headers.items() if hasattr(resp.headers, "items") else resp.headers
            for name, value in headers:
                lowered = name.lower()
                if lowered in wanted:
                    atoms["{%s}o" % lowered] = value  # noqa: UP031  # gunicorn's key shape
        return atoms
