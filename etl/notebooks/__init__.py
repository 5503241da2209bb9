"""What the papermill notebooks (``etl/notebooks/*.ipynb``) call: the stage opened for SQL, fields measured
against the contract, the quality history's sources, reprocessing a day, backfills across days, sample data
and the golden copies that nbval checks.

The notebooks' analysis (queries, group-bys, drift thresholds, charts) is in their cells, where an analyst
changes it; what stays here is I/O, the contract's rules and keeping card data out of every output."""

KERNEL = "python3"  # the environment's own kernel (ipykernel's built-in spec resolves to this interpreter)
