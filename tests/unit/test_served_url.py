"""Where webhook URLs point: BRIDGE_PUBLIC_URL, else the running server's listen address."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.served_url import (
    LISTEN_FILE,
    forget_listening,
    is_loopback_url,
    listening_address,
    record_listening,
    served_base_url,
)
from config.settings import Settings


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(database_url="sqlite://", instance_path=tmp_path, **values)  # type: ignore[arg-type]


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    return int(done.stdout)


def test_the_running_servers_address_wins_over_the_settings(tmp_path: Path) -> None:
    record_listening(tmp_path, [("127.0.0.1", 8081)], os.getpid())

    served = served_base_url(settings(tmp_path, port=8000))

    assert (served.url, served.source) == ("http://127.0.0.1:8081", "server")
    assert served.is_loopback
    note = served.loopback_note()
    assert note is not None
    assert "Sentry's cloud cannot" in note and "BRIDGE_PUBLIC_URL" in note


def test_public_url_wins_and_needs_no_note(tmp_path: Path) -> None:
    record_listening(tmp_path, [("127.0.0.1", 8081)], os.getpid())

    served = served_base_url(settings(tmp_path, public_base_url="https://bridge.example.com/"))

    assert (served.url, served.source) == ("https://bridge.example.com", "public_url")
    assert served.loopback_note() is None


def test_a_stale_file_of_a_stopped_server_is_ignored(tmp_path: Path) -> None:
    record_listening(tmp_path, [("127.0.0.1", 8081)], dead_pid())

    served = served_base_url(settings(tmp_path, host="127.0.0.1", port=8000))

    assert (served.url, served.source) == ("http://127.0.0.1:8000", "settings")


def test_an_unreadable_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / LISTEN_FILE).write_text("{not json", encoding="utf-8")

    assert listening_address(tmp_path) is None


def test_every_interface_becomes_loopback_for_the_cli_and_the_page_uses_its_own_host(
    tmp_path: Path,
) -> None:
    record_listening(tmp_path, [("0.0.0.0", 9000)], os.getpid())  # noqa: S104

    assert served_base_url(settings(tmp_path)).url == "http://127.0.0.1:9000"
    page = served_base_url(settings(tmp_path), "http://bridge.lan:9000/")
    assert page.url == "http://bridge.lan:9000"
    assert not page.is_loopback


def test_ipv6_listener(tmp_path: Path) -> None:
    record_listening(tmp_path, [("::1", 9001)], os.getpid())

    assert served_base_url(settings(tmp_path)).url == "http://[::1]:9001"


def test_the_server_removes_only_its_own_file(tmp_path: Path) -> None:
    record_listening(tmp_path, [("127.0.0.1", 8081)], os.getpid())
    forget_listening(tmp_path, os.getpid() + 1)
    assert (tmp_path / LISTEN_FILE).exists()

    forget_listening(tmp_path, os.getpid())
    assert not (tmp_path / LISTEN_FILE).exists()


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://127.3.4.5", True),
        ("http://localhost:8000", True),
        ("http://[::1]:8000", True),
        ("https://bridge.example.com", False),
        ("http://10.0.0.5:8000", False),
    ],
)
def test_is_loopback_url(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback
