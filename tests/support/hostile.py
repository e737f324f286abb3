"""Sentry fixtures with one field replaced by a hostile value: wrong types, NUL, lone
surrogates, huge numbers. Used where the rule is "never a 500" (receiver and parsers)."""

from __future__ import annotations

import copy
import json
from itertools import cycle
from typing import Any

from tests.support.payloads import fixture_names, load

HOSTILE_VALUES: list[Any] = [
    None,
    True,
    10**30,
    -(2**63),
    1e308,
    -0.0,
    "",
    "x" * 300,
    "ü\u0000\ud7ff💥",
    "\ud800 lone surrogate",
    "9" * 70,
    [],
    [[["deep"]]],
    {},
    {"id": {"id": None}},
    "2026-13-45T99:99:99Z",
    "1e999",
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = [prefix] if prefix else []
    if isinstance(value, dict | list) and len(prefix) < 4:
        children = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in children:
            found.extend(_paths(child, (*prefix, key)))
    return found


def hostile_cases() -> list[tuple[str, str | None, bytes]]:
    """Every field (4 levels deep) of every fixture, each replaced by the next hostile value."""
    values = cycle(HOSTILE_VALUES)
    cases = []
    for name in fixture_names():
        resource, original = load(name)
        for path in _paths(original):
            payload = copy.deepcopy(original)
            parent = payload
            for step in path[:-1]:
                parent = parent[step]
            parent[path[-1]] = next(values)
            cases.append((name, resource, json.dumps(payload).encode()))
    return cases
