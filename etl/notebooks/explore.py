"""Exploring the parquet stage (``notebooks/explore_stage.ipynb``): load with partition pruning, count, chart.

Aggregates are computed by Arrow (exact decimal sums), then handed to pandas for display; results are
sorted so a notebook's output is the same on every run. Charts convert money to float for drawing only.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from matplotlib.figure import Figure

from etl.contract import load_contract
from etl.io.stage import read_stage
from etl.notebooks.samples import SAMPLES_DIR, as_date, stage_or_samples
from etl.schema import stage_schema


@dataclass(frozen=True)
class View:
    """A grouped summary worth a chart: rows (and the exact sum of ``value``) per ``by`` combination."""

    title: str
    by: tuple[str, ...]
    value: str | None = None


# What a data scientist looks at first, per feed; any feed also gets daily counts and top values.
VIEWS: dict[str, tuple[View, ...]] = {
    "transactions": (
        View("Debit/credit volume by channel", ("channel", "debit_credit"), "amount"),
        View("Status by day", ("business_date", "status")),
    ),
    "account_summary": (
        View("Delinquency buckets over time", ("business_date", "delinquency_bucket")),
        View("Balance by product", ("product_code",), "current_balance"),
    ),
}


def load(feed: str, start: str, end: str, stage_uri: str = "", samples_dir: str = SAMPLES_DIR) -> pa.Table:
    """Staged rows of ``feed`` for ISO dates ``[start, end]``; only those partitions are read.

    An empty ``stage_uri`` means a stage built from the committed samples (no database needed).
    """
    first, last = as_date(start), as_date(end)
    if first > last:
        raise ValueError(f"start {first} is after end {last}")
    contract = load_contract(feed)
    return read_stage(stage_or_samples(feed, stage_uri, samples_dir), contract, first, last)


def coded_columns(feed: str) -> list[str]:
    """Staged columns whose contract lists allowed values (channel, status, product code, ...)."""
    contract = load_contract(feed)
    staged = set(stage_schema(contract).names)
    return [spec.name for spec in contract.fields if spec.allowed and spec.name in staged]


def daily_counts(table: pa.Table) -> pd.DataFrame:
    """Rows per business date, oldest first."""
    return totals(table, ("business_date",))


def totals(table: pa.Table, by: tuple[str, ...] | list[str], value: str | None = None) -> pd.DataFrame:
    """Rows (and the exact sum of ``value``) per combination of ``by``, sorted by the keys."""
    aggregations = [(by[0], "count")]
    if value is not None:
        aggregations.append((value, "sum"))
    grouped = table.group_by(list(by), use_threads=False).aggregate(aggregations)
    grouped = grouped.rename_columns([*by, "rows", *([f"{value}_sum"] if value else [])])
    grouped = grouped.sort_by([(name, "ascending") for name in by])
    return grouped.select([*by, "rows", *([f"{value}_sum"] if value else [])]).to_pandas()


def top_values(table: pa.Table, column: str, n: int = 5) -> pd.DataFrame:
    """The ``n`` most frequent values of ``column`` (ties broken by value), with their share of rows."""
    counts = pc.value_counts(table.column(column)).flatten()
    frame = pa.table({column: counts[0], "rows": counts[1]}).sort_by([("rows", "descending"), (column, "ascending")])
    frame = frame.slice(0, n).to_pandas()
    frame["share"] = (frame["rows"] / max(table.num_rows, 1)).round(3)
    return frame


def views(table: pa.Table, feed: str) -> dict[str, pd.DataFrame]:
    """The feed's summaries (``VIEWS``), titled."""
    return {view.title: totals(table, view.by, view.value) for view in VIEWS.get(feed, ())}


def plot_daily(frame: pd.DataFrame, title: str = "Rows per business date") -> Figure:
    """Bar chart of ``daily_counts``."""
    figure = Figure(figsize=(6, 3))
    axes = figure.subplots()
    axes.bar(frame["business_date"].astype(str), frame["rows"])
    axes.set_title(title)
    axes.set_ylabel("rows")
    figure.tight_layout()
    return figure


def plot_view(frame: pd.DataFrame, title: str) -> Figure:
    """Grouped bars of a ``totals`` frame: first key on the x axis, second key (if any) as the series."""
    keys = [c for c in frame.columns if c != "rows" and not c.endswith("_sum")]
    measure = next((c for c in frame.columns if c.endswith("_sum")), "rows")
    values = frame[measure].astype(float)  # drawing only; the table keeps exact decimals
    figure = Figure(figsize=(7, 3.5))
    axes = figure.subplots()
    if len(keys) >= 2:
        wide = frame.assign(_v=values).pivot_table(index=keys[0], columns=keys[1], values="_v", aggfunc="sum")
        wide.index = wide.index.astype(str)
        wide.plot.bar(ax=axes, rot=0)
    else:
        axes.bar(frame[keys[0]].astype(str), values)
    axes.set_title(title)
    axes.set_ylabel(measure)
    figure.tight_layout()
    return figure
