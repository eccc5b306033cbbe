"""Shared test configuration: every test under tests/e2e/ carries the ``e2e`` marker (``-m 'not e2e'`` skips
them)."""

from pathlib import Path

import pytest

E2E = Path(__file__).parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E in item.path.parents:
            item.add_marker(pytest.mark.e2e)
