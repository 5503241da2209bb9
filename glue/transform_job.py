"""Glue job entry: read the job arguments, run etl's Spark engine on one raw file, print the result."""

from __future__ import annotations

import json
import sys

from etl.spark.engine import run_job, spark_session
from etl.spark.job import job_arguments


def main(argv: list[str] | None = None) -> dict:
    result = run_job(spark_session("fintech-etl-transform"), **job_arguments(argv or sys.argv))
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
