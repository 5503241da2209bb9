"""The loader's SQL, composed from a contract with every identifier quoted (``psycopg.sql.Identifier``).

Pure: contract in, composed statements out; ``load.py`` runs them. The strategy (see ``load.py``): binary
COPY into a temp table, drop in-file duplicate keys (last row wins), UPDATE existing keys whose data changed,
INSERT keys the target lacks, DELETE keys whose action says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from psycopg import sql

from etl.contract import LINEAGE_COLUMNS, Contract
from etl.schema import stage_schema


@dataclass(frozen=True)
class LoadPlan:
    """Column roles of one feed's target table, from its contract."""

    contract: Contract

    @property
    def target(self) -> sql.Composable:
        t = self.contract.target_table
        return sql.Identifier(t.schema_, t.name)

    @property
    def temp(self) -> sql.Composable:
        return sql.Identifier(f"_etl_load_{self.contract.feed}")

    @property
    def action(self) -> str | None:
        return self.contract.action.field if self.contract.action else None

    @cached_property
    def stage_columns(self) -> list[str]:
        """Columns of the incoming batches, in stage order (the action column included)."""
        return stage_schema(self.contract).names

    @cached_property
    def copy_columns(self) -> list[str]:
        """Columns sent through COPY: the stage columns less lineage, which is one value per file and reaches
        the temp table as column defaults (a third less CSV to parse: 1M rows 3.1 s -> 2.2 s)."""
        return [c for c in self.stage_columns if c not in LINEAGE_COLUMNS]

    @cached_property
    def table_columns(self) -> list[str]:
        """Columns of the target table: the stage columns less the action field."""
        return [c for c in self.stage_columns if c != self.action]

    @property
    def key(self) -> list[str]:
        return list(self.contract.primary_key)

    @cached_property
    def compared_columns(self) -> list[str]:
        """Data columns whose change makes a row 'updated' (not the key, not lineage)."""
        return [c for c in self.table_columns if c not in self.key and c not in LINEAGE_COLUMNS]

    @cached_property
    def set_columns(self) -> list[str]:
        """Columns an update writes: all but the key (lineage follows the data that changed)."""
        return [c for c in self.table_columns if c not in self.key]


def _ids(names: list[str], qualifier: str | None = None) -> sql.Composable:
    if qualifier is None:
        return sql.SQL(", ").join(sql.Identifier(n) for n in names)
    return sql.SQL(", ").join(sql.Identifier(qualifier, n) for n in names)


def _key_match(plan: LoadPlan, left: str, right: str) -> sql.Composable:
    return sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier(left, k), sql.Identifier(right, k)) for k in plan.key
    )


def _action_in(plan: LoadPlan, alias: str, codes: tuple[str, ...]) -> sql.Composable:
    """``alias.action IN (...)`` as literals, or TRUE for feeds without an action field."""
    if plan.action is None:
        return sql.SQL("TRUE")
    return sql.SQL("{} IN ({})").format(
        sql.Identifier(alias, plan.action), sql.SQL(", ").join(sql.Literal(c) for c in codes)
    )


def create_temp(plan: LoadPlan) -> list[sql.Composable]:
    """The temp table: the target's columns and types, but none of its constraints (CREATE ... AS ... WITH NO
    DATA), so no COPY into it can fail with a "Failing row contains (...)" report; the loader checks NOT NULL
    and sizes itself before sending a batch (``column_fit``)."""
    stmts: list[sql.Composable] = [
        sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT * FROM {} WITH NO DATA").format(plan.temp, plan.target)
    ]
    if plan.action:
        stmts.append(sql.SQL("ALTER TABLE {} ADD COLUMN {} text").format(plan.temp, sql.Identifier(plan.action)))
    return stmts


def lineage_defaults(plan: LoadPlan, values: dict[str, object]) -> list[sql.Composable]:
    """Give the temp table's lineage columns the file's values as defaults, so COPY can leave them out.

    DDL takes no bind parameters: the values go in as ``sql.Literal`` (quoted and typed by psycopg).
    """
    return [
        sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {}").format(
            plan.temp, sql.Identifier(name), sql.Literal(values[name])
        )
        for name in LINEAGE_COLUMNS
    ]


def copy_in(plan: LoadPlan, columns: list[str] | None = None) -> sql.Composable:
    """Binary COPY (``copy_binary``) of ``columns`` (default: ``copy_columns``) in that order: its error context
    names a line and a column, never a value."""
    return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(plan.temp, _ids(columns or plan.copy_columns))


def drop_duplicate_keys(plan: LoadPlan) -> sql.Composable:
    """Keep the last row per key (highest ctid = latest in COPY order in a fresh, never-updated table)."""
    keys = _ids(plan.key)
    return sql.SQL(
        "DELETE FROM {tmp} AS s USING (SELECT {keys}, max(ctid) AS keep FROM {tmp} GROUP BY {keys} "
        "HAVING count(*) > 1) AS d WHERE {match} AND s.ctid <> d.keep"
    ).format(tmp=plan.temp, keys=keys, match=_key_match(plan, "s", "d"))


def analyze_temp(plan: LoadPlan) -> sql.Composable:
    """Statistics for the columns the joins and filters use (key, action): temp tables never get any."""
    columns = plan.key + ([plan.action] if plan.action else [])
    return sql.SQL("ANALYZE {} ({})").format(plan.temp, _ids(columns))


def count_upserts(plan: LoadPlan) -> sql.Composable:
    return sql.SQL("SELECT count(*) FROM {} AS s WHERE {}").format(
        plan.temp, _action_in(plan, "s", _upsert_codes(plan))
    )


def _upsert_codes(plan: LoadPlan) -> tuple[str, ...]:
    return plan.contract.action.upsert if plan.contract.action else ()


def update_changed(plan: LoadPlan) -> sql.Composable:
    """Rewrite only existing rows whose data differs; unchanged rows are neither counted nor touched."""
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(c), sql.Identifier("s", c)) for c in plan.set_columns
    )
    return sql.SQL(
        "UPDATE {target} AS t SET {assign} FROM {tmp} AS s WHERE {match} AND {upsert} "
        "AND ({tcols}) IS DISTINCT FROM ({scols})"
    ).format(
        target=plan.target,
        assign=assignments,
        tmp=plan.temp,
        match=_key_match(plan, "t", "s"),
        upsert=_action_in(plan, "s", _upsert_codes(plan)),
        tcols=_ids(plan.compared_columns, "t"),
        scols=_ids(plan.compared_columns, "s"),
    )


def insert_new(plan: LoadPlan) -> sql.Composable:
    """Insert keys the target does not have (anti-join): no ON CONFLICT bookkeeping per row.

    Rows go in key order, so the primary-key btree fills page after page instead of splitting pages all over
    (random keys such as UUIDs): 1M rows 5.0 s -> 3.5 s on these machines.
    """
    return sql.SQL(
        "INSERT INTO {target} ({cols}) SELECT {scols} FROM {tmp} AS s WHERE {upsert} "
        "AND NOT EXISTS (SELECT 1 FROM {target} AS t WHERE {match}) ORDER BY {keys}"
    ).format(
        target=plan.target,
        cols=_ids(plan.table_columns),
        scols=_ids(plan.table_columns, "s"),
        tmp=plan.temp,
        upsert=_action_in(plan, "s", _upsert_codes(plan)),
        match=_key_match(plan, "t", "s"),
        keys=_ids(plan.key, "s"),
    )


def delete_marked(plan: LoadPlan) -> sql.Composable | None:
    """Delete target rows whose key arrives with a delete action; None for feeds without actions."""
    if plan.contract.action is None:
        return None
    return sql.SQL("DELETE FROM {target} AS t USING {tmp} AS s WHERE {match} AND {delete}").format(
        target=plan.target,
        tmp=plan.temp,
        match=_key_match(plan, "t", "s"),
        delete=_action_in(plan, "s", plan.contract.action.delete),
    )


def lock_feed() -> sql.Composable:
    """Per-feed transaction lock; the feed name is a bound parameter hashed by the server."""
    return sql.SQL("SELECT pg_advisory_xact_lock(hashtext('fintech-etl.load'), hashtext(%s))")
