"""A run target whose import takes seconds, for the local backend's startup_timeout tests."""

from __future__ import annotations

import os
import time

time.sleep(float(os.environ.get("MTC_TEST_IMPORT_S", "0")))


def run() -> None:
    """Nothing: only the import is slow."""
