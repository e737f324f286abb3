"""Where the running server really answers, for the webhook URLs the CLI and the pages print.

BRIDGE_PUBLIC_URL wins. Without it, the address the server listens on: gunicorn's master
writes it to `listen.json` in the instance folder once its sockets are bound
(config/gunicorn.conf.py), so a `bridge integration create` in another shell, where PORT
is not set, still prints the port the server was started on. With no server running (or
its file stale), the HOST and PORT settings. A loopback address is reachable from this
machine only: Sentry's cloud cannot deliver to it, and the CLI and the pages say so.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from config.settings import Settings

LISTEN_FILE = "listen.json"
# Bind addresses meaning "every interface"; not an address anyone can send to as such.
ANY_ADDRESS = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 - compared, never bound


@dataclass(frozen=True)
class ServedUrl:
    url: str  # no trailing slash
    source: str  # "public_url", "server" (listen.json) or "settings"

    @property
    def is_loopback(self) -> bool:
        return is_loopback_url(self.url)

    def loopback_note(self) -> str | None:
        """What to tell someone about to paste this URL into Sentry, or None if it is fine."""
        if not self.is_loopback:
            return None
        return (
            f"{self.url} is a loopback address: only this machine can reach it, so Sentry's "
            "cloud cannot deliver to it. Set BRIDGE_PUBLIC_URL to the https address Sentry "
            "should use (a proxy or tunnel to this server); curl on this machine works as is."
        )


def is_loopback_url(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _http_url(host: str, port: int) -> str:
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def record_listening(instance_path: Path, addresses: list[tuple[str, int]], pid: int) -> None:
    """Written by the server once bound: its (host, port) listeners and its pid."""
    instance_path.mkdir(parents=True, exist_ok=True)
    document = {"pid": pid, "listeners": [{"host": h, "port": p} for h, p in addresses]}
    handle, temporary = tempfile.mkstemp(dir=instance_path, prefix=".listen-", suffix=".json")
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        json.dump(document, file)
    os.replace(temporary, instance_path / LISTEN_FILE)


def forget_listening(instance_path: Path, pid: int) -> None:
    """Removed by the server as it exits (only its own file, never a newer server's)."""
    path = instance_path / LISTEN_FILE
    found = _read(path)
    if found is not None and found[0] == pid:
        path.unlink(missing_ok=True)


def _read(path: Path) -> tuple[int, list[tuple[str, int]]] | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        pid = int(document["pid"])
        listeners = [(str(item["host"]), int(item["port"])) for item in document["listeners"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid, listeners


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def listening_address(instance_path: Path) -> tuple[str, int] | None:
    """The first TCP listener of the server running on this instance folder, if any."""
    found = _read(instance_path / LISTEN_FILE)
    if found is None or not found[1] or not _is_running(found[0]):
        return None
    return found[1][0]


def served_base_url(settings: Settings, request_root: str | None = None) -> ServedUrl:
    """The base of the webhook URLs: BRIDGE_PUBLIC_URL, else the running server's address.

    `request_root` (a page's own http://host:port/) stands in where the server's address
    is no address to send to: when it listens on every interface, and when no server
    wrote its address (the development server, tests). Without it, 127.0.0.1 and the
    settings are used.
    """
    if settings.public_base_url:
        return ServedUrl(settings.public_base_url.rstrip("/"), "public_url")
    listening = listening_address(settings.instance_path)
    host, port = listening or (settings.host, settings.port)
    source = "server" if listening else "settings"
    if request_root and (host in ANY_ADDRESS or listening is None):
        return ServedUrl(request_root.rstrip("/"), "request")
    if host in ANY_ADDRESS:
        host = "127.0.0.1"
    return ServedUrl(_http_url(host, port), source)
