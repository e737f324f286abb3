"""The layering in pyproject.toml ([tool.importlinter]) is checked, and the check can fail.

`make test` runs `lint-imports` on the tree. These tests run it on a copy of app/ with one
import added that a lower layer must not make, and expect the contract to break.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The project is installed editable: its finder would resolve `app` to this tree, not to the
# copy, so the runner drops that finder before handing over to lint-imports' own command.
_RUNNER = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if not type(f).__module__.startswith("__editable")]
from importlinter.cli import lint_imports_command
sys.argv = ["lint-imports", "--no-cache", "--no-logo"]
lint_imports_command()
"""


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _RUNNER],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "200"},  # one contract a line, however long its name
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of app/ and of the contracts, to break on purpose."""
    shutil.copytree(ROOT / "app", tmp_path / "app", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _add_import(tree: Path, module: str, line: str) -> None:
    path = tree / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")


def test_the_copied_tree_keeps_every_contract(tree: Path) -> None:
    result = _lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # The domain reaching up into the web layer (and so, through it, to Flask).
        ("app/domain/severity.py", "from app.web import errors  # noqa", "Layers"),
        # A service reaching up into the jobs process.
        ("app/services/retention.py", "import app.jobs.prune  # noqa", "Layers"),
        # The store reaching up into a service.
        ("app/store/outage.py", "from app.services import catalog  # noqa", "Layers"),
        # A service reading the request's app through the collaborators.
        ("app/services/retention.py", "from app.extensions import bridge  # noqa", "Layers"),
        # The domain importing a database library.
        ("app/domain/severity.py", "import sqlalchemy  # noqa", "The domain is pure"),
        ("app/domain/links.py", "from flask import request  # noqa", "The domain is pure"),
    ],
)
def test_an_import_against_the_layers_breaks_a_contract(
    tree: Path, module: str, line: str, broken: str
) -> None:
    _add_import(tree, module, line)
    result = _lint_imports(tree)
    assert result.returncode != 0
    broken_contracts = [row for row in result.stdout.splitlines() if row.endswith("BROKEN")]
    assert any(row.startswith(broken) for row in broken_contracts), result.stdout
