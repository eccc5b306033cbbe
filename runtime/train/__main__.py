"""``python -m runtime.train CONFIG [key=value ...]``."""

import os
import sys

from runtime.train.entry import cli

if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(cli())
