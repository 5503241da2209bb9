"""What the papermill notebooks in ``notebooks/`` call: stage exploration, schema profiling, reprocessing a
day, backfills across days, sample data and the golden copies that nbval checks. Notebooks hold narration,
calls and plots; the logic lives here."""

KERNEL = "python3"  # the environment's own kernel (ipykernel's built-in spec resolves to this interpreter)
