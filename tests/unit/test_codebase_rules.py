"""House rules that a linter does not check: read from the source files themselves."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"


def _imported_modules(source: str, path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every import in the source of the file at `path`, relative imports
    resolved against its package."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            yield node.lineno, base
            # `from tests.integration import test_pages` imports a test module too.
            yield from ((node.lineno, f"{base}.{alias.name}") for alias in node.names)


def _is_test_module(module: str) -> bool:
    return module.startswith("tests.") and module.rsplit(".", 1)[-1].startswith("test_")


def test_no_test_module_imports_another_test_module() -> None:
    # Shared helpers live in tests/support/: importing a test module runs (and collects)
    # its tests' module in two places and ties one test file's internals to another.
    offending = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted(TESTS.rglob("*.py"))
        for line, module in _imported_modules(path.read_text(encoding="utf-8"), path)
        if _is_test_module(module)
    ]
    assert offending == []


def test_no_module_imports_a_conftest() -> None:
    # pytest loads conftests itself; what tests share beyond fixtures is in tests/support/
    # (the e2e server harness too: tests/support/stack.py).
    offending = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted(TESTS.rglob("*.py"))
        for line, module in _imported_modules(path.read_text(encoding="utf-8"), path)
        if module.endswith(".conftest")
    ]
    assert offending == []


def test_the_rule_sees_absolute_relative_and_from_package_imports() -> None:
    source = (
        "from tests.integration.test_pages import log_in\n"
        "from .test_receiver import post\n"
        "from tests.e2e import test_browser\n"
        "from tests.support.pages import log_in as fine\n"
        "import tests.unit.test_alerts\n"
    )
    where = TESTS / "integration" / "test_anything.py"  # parsed, never written

    found = [
        module for _line, module in _imported_modules(source, where) if _is_test_module(module)
    ]

    assert found == [
        "tests.integration.test_pages",
        "tests.integration.test_receiver",
        "tests.e2e.test_browser",
        "tests.unit.test_alerts",
    ]


def test_only_config_reads_the_environment() -> None:
    # STYLE: config/ is the only place that reads os.environ; app/ and wsgi.py are handed
    # Settings. (Tests and benchmarks may read the environment.)
    reads = []
    for path in sorted([*(ROOT / "app").rglob("*.py"), ROOT / "wsgi.py"]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            # os.environ, not a WSGI request's environ (request.environ is the request).
            if (
                isinstance(node, ast.Attribute)
                and node.attr in {"environ", "getenv", "environb"}
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
            ):
                reads.append(f"{path.relative_to(ROOT)}:{node.lineno} os.{node.attr}")
            if isinstance(node, ast.ImportFrom) and node.module == "os":
                names = {alias.name for alias in node.names}
                if names & {"environ", "getenv", "environb"}:
                    reads.append(f"{path.relative_to(ROOT)}:{node.lineno} from os import")
    assert reads == []
