"""Regenerate the golden executed copies (notebooks/golden/) of the packaged notebooks (etl/notebooks/*.ipynb),
checked cell by cell by nbval in the tests.
checked cell by cell by nbval in the tests.

    .venv/bin/python notebooks/regenerate_golden.py [NAME ...]

Each notebook runs with its defaults, in a fresh environment: a temporary ETL_HOME, a fixed dummy PAN key,
and the database from ETL_DATABASE_URL (which must be an empty, migrated database) or, when unset, an
embedded PostgreSQL created in the temporary ETL_HOME and stopped afterwards. Timing metadata is dropped
so a regeneration changes only what the outputs changed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from etl.notebooks.golden import regenerate

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"

if __name__ == "__main__":
    for path in regenerate(GOLDEN_DIR, sys.argv[1:] or None):
        print(path)
