"""``python -m neuroxai``: the same as the ``neuroxai`` command."""

from __future__ import annotations

import sys

from neuroxai.cli import main

if __name__ == "__main__":
    sys.exit(main())
