"""Helpers of the browser tests (Playwright pages against the real server)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tests.support.pages import PASSWORD

if TYPE_CHECKING:
    from tests.support.stack import Stack


def create_user(server: Stack, email: str, *flags: str) -> None:
    """`bridge user create` against the server's database, with the shared password."""
    bridge = Path(sys.executable).parent / "bridge"  # the venv's, like the server's
    done = subprocess.run(
        [str(bridge), "user", "create", email, *flags, "--password-stdin"],
        input=PASSWORD + "\n",
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def screenshot(page: object, name: str) -> None:
    """Keep a full-page screenshot when SCREENSHOT_DIR is set (the README's pictures)."""
    directory = os.environ.get("SCREENSHOT_DIR")
    if directory:
        page.screenshot(path=str(Path(directory) / name), full_page=True)  # type: ignore[attr-defined]


def log_in(page: object, base: str, email: str) -> None:
    """Fill in and submit the login form."""
    page.goto(f"{base}/login")  # type: ignore[attr-defined]
    page.get_by_label("Email").fill(email)  # type: ignore[attr-defined]
    page.get_by_label("Password").fill(PASSWORD)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Log in").click()  # type: ignore[attr-defined]
