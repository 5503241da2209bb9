"""An ``etl`` process ends with its own exit code: nothing it leaves behind aborts the interpreter's exit.

pyarrow reads a file handed to it as a Python file object from its own C++ threads, which call back into
Python; one still at work when the interpreter finalizes aborts the process ("terminate called without an
active exception", SIGABRT) after its work is done. That is how a SKIPPED ``etl run`` sometimes died after
printing its notification: checking whether the stage file must be restored read the parquet that way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[2]
RUNS = 8  # the old read aborted about every second process: eight clean exits in a row rule it out

READ_STAGE = """
from etl.pipeline.context import Context
from etl.pipeline.recover import _staged_execution
print(_staged_execution(Context(), "transactions/business_date=2024-03-01/transactions_20240301.parquet"))
"""


def test_reading_a_stage_file_back_never_aborts_the_exit(tmp_path: Path) -> None:
    folder = tmp_path / "stage" / "transactions" / "business_date=2024-03-01"
    folder.mkdir(parents=True)
    rows = 200_000
    table = pa.table({"execution_name": pa.array(["exec-1"] * rows), "n": pa.array(range(rows))})
    pq.write_table(table, folder / "transactions_20240301.parquet", row_group_size=rows // 4)
    env = {**os.environ, "PYTHONPATH": str(REPO), "ETL_HOME": str(tmp_path)}
    env.pop("ETL_STAGE_URI", None)
    for _ in range(RUNS):
        done = subprocess.run([sys.executable, "-c", READ_STAGE], env=env, capture_output=True, text=True, timeout=120)
        assert (done.returncode, done.stdout.strip()) == (0, "exec-1"), done.stderr
