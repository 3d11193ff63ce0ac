from __future__ import annotations

import sys
from pathlib import Path

# The tests import their helpers module by name (pytest runs with --import-mode=importlib).
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
for path in (str(HERE), str(ROOT)):
    if path not in sys.path:
        sys.path.insert(0, path)
