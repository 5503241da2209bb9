"""Load staged Arrow batches into the feed's table: one transaction, exactly docs/design.md §7.

1. ``pg_advisory_xact_lock`` per feed, then re-check the ledger: content already LOADED -> SKIPPED
   (rule F004; two concurrent loads of one file load it once).
2. COPY the batches into a TEMP table (ON COMMIT DROP) in binary format (``copy_binary``: built with numpy,
   no per-row Python). Each batch is first checked against the table's columns (``column_fit``), so the server
   never meets a value it cannot store; and a binary COPY's error context names a line and a column, never a
   value. Errors leaving the load carry the server's primary message only (``errors.redact``): its DETAIL and
   CONTEXT lines may quote row data.
3. In-file duplicate keys: the last row in file order wins (earlier ones are dropped from the temp table).
4. ``ANALYZE`` the temp table (never auto-analysed), then set-based statements instead of
   ``INSERT ... ON CONFLICT DO UPDATE`` (slow on a large first load, docs/design.md §11):
   ``UPDATE ... FROM temp`` rows whose compared columns are DISTINCT, ``DELETE ... USING temp`` keys marked
   for delete, ``INSERT ... SELECT`` keys the target lacks (anti-join). The advisory lock keeps other loads
   of the feed out between the statements; a foreign writer inserting the same key in between makes the
   INSERT fail and the whole load roll back, still retryable.
5. The ledger row; commit. Any failure rolls everything back, so the same file can simply be retried.

``limits`` (``etl.db.limits``) bound the waits: the feed's lock for the time the caller has left, every other
lock for ``lock_timeout``, and each statement, set again before it runs, for the time left minus a margin.

Every row of the file is counted once (``RowCounts.accounted``): rows_in = inserted + updated + deleted +
unchanged + not_found (deletes of keys the table lacks) + superseded (an earlier row of a key repeated later
in the file) + skipped (a SKIPPED file) + rejected (left out under the reject threshold).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, replace

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg.copy import QueuedLibpqWriter

from etl.contract import LINEAGE_COLUMNS, Contract
from etl.db import ledger, statements
from etl.db.column_fit import check_fits, table_columns
from etl.db.copy_binary import SIGNATURE, TRAILER, ColumnType, Encoder, copy_rows, encoder_for, fixed_first
from etl.db.errors import install_log_redaction, redacted_database_errors
from etl.db.ledger import LedgerStatus, RowCounts
from etl.db.limits import LoadLimits
from etl.errors import EtlError

# Hash joins and aggregates over a whole file's keys stay in memory instead of spilling in 32 batches
# (measured: the day-2 UPDATE 5.7 s -> 3.5 s on 1M rows). SET LOCAL: only this load's transaction.
WORK_MEM = "256MB"
LOOKAHEAD = 2  # batches encoded ahead of the COPY: bounded memory (a few MB a batch)
Hook = Callable[[psycopg.Connection], None]


install_log_redaction()


class LoadError(EtlError, RuntimeError):
    """The batches do not fit the contract's table (missing columns, wrong connection state)."""


@dataclass(frozen=True)
class LoadResult:
    """What a load did: its ledger status, what happened to every row of its file (``counts.accounted``
    holds for every result) and the ledger row it wrote (None for a preview)."""

    status: LedgerStatus
    counts: RowCounts
    ledger_id: int | None = None


@dataclass(frozen=True)
class CopyTarget:
    """The temp table's columns the COPY writes, typed from the catalog, with their binary encoders."""

    columns: list[ColumnType]
    encoders: list[Encoder]

    @classmethod
    def of(cls, conn: psycopg.Connection, plan: statements.LoadPlan, first: pa.RecordBatch) -> CopyTarget:
        """The COPY's columns, those of one width in the file's first batch first (``fixed_first``)."""
        table = plan.contract.target_table
        found = table_columns(conn, table.schema_, table.name)
        if plan.action:
            found[plan.action] = ColumnType(plan.action, "text", not_null=False)
        missing = [c for c in plan.copy_columns if c not in found]
        if missing:
            raise LoadError(f"table {table.schema_}.{table.name} lacks column(s) {missing}")
        columns = [found[c] for c in plan.copy_columns]
        try:
            encoders = [encoder_for(c) for c in columns]
            if not set(plan.copy_columns) <= set(first.schema.names):
                return cls(columns, encoders)  # encode() names the missing columns
            order = fixed_first(first, columns, encoders)
        except ValueError as exc:
            raise LoadError(str(exc)) from exc
        return cls([columns[i] for i in order], [encoders[i] for i in order])

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def encode(self, batch: pa.RecordBatch) -> bytes:
        missing = sorted(set(c.name for c in self.columns) - set(batch.schema.names))
        if missing:
            raise LoadError(f"batch lacks stage column(s) {missing}")
        check_fits(batch, self.columns)
        try:
            return copy_rows(batch, self.columns, self.encoders)
        except ValueError as exc:
            raise LoadError(str(exc)) from exc


@dataclass
class CopyCounts:
    """Rows sent to the COPY, and how many of them carry an upsert action (all, without an action field)."""

    rows: int = 0
    upserts: int = 0

    @property
    def deletes(self) -> int:
        return self.rows - self.upserts

    def add(self, batch: pa.RecordBatch, plan: statements.LoadPlan, lineage: dict[str, object]) -> None:
        _check_lineage(batch, lineage)
        self.rows += batch.num_rows
        action = plan.contract.action
        if action is None:
            self.upserts += batch.num_rows
        else:
            marked = pc.is_in(batch.column(action.field), value_set=pa.array(action.upsert, pa.string()))
            self.upserts += int(pc.sum(marked).as_py() or 0)


def file_lineage(batch: pa.RecordBatch) -> dict[str, object]:
    """The lineage values of a file (one per file), read off its first non-empty batch."""
    missing = [name for name in LINEAGE_COLUMNS if name not in batch.schema.names]
    if missing:
        raise LoadError(f"batch lacks stage column(s) {missing}")
    return {name: batch.column(name)[0].as_py() for name in LINEAGE_COLUMNS}


def _check_lineage(batch: pa.RecordBatch, lineage: dict[str, object]) -> None:
    """Every row must carry the file's lineage: it reaches the table as the temp table's column defaults."""
    for name, value in lineage.items():
        low, high = pc.min_max(batch.column(name)).values()
        if low.as_py() != value or high.as_py() != value:
            raise LoadError(f"{name} differs between rows of one file: a load takes one file at a time")


def copy_chunks(
    batches: Iterable[pa.RecordBatch],
    plan: statements.LoadPlan,
    target: CopyTarget,
    counts: CopyCounts,
    lineage: dict[str, object],
) -> Iterator[bytes]:
    """Binary COPY data per batch, encoded in a worker thread (numpy and Arrow release the GIL) a few batches
    ahead, so encoding overlaps producing the batches and sending them; ``counts`` accumulates as they pass."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="etl-copy") as pool:
        pending: deque[Future[bytes]] = deque()
        for batch in batches:
            if batch.num_rows:
                counts.add(batch, plan, lineage)
                pending.append(pool.submit(target.encode, batch))
            if len(pending) > LOOKAHEAD:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def copy_batches(
    conn: psycopg.Connection,
    plan: statements.LoadPlan,
    batches: Iterable[pa.RecordBatch],
    before: Hook | None = None,
) -> CopyCounts:
    """COPY every batch into the temp table; return the row counts (``before`` runs right before the COPY).

    The queued writer sends from its own thread, so the network, the CSV encoder and the batch producer
    (parser and transform upstream) all overlap.
    """
    counts = CopyCounts()
    rest = iter(batches)
    first = next((b for b in rest if b.num_rows), None)
    if first is None:
        return counts
    lineage = file_lineage(first)
    for stmt in statements.lineage_defaults(plan, lineage):
        conn.execute(stmt)
    target = CopyTarget.of(conn, plan, first)
    stopped: BaseException | None = None  # what ended the COPY early, re-raised once psycopg has ended it
    copy_in = statements.copy_in(plan, target.names)
    if before is not None:
        before(conn)
    try:
        with conn.cursor() as cur, cur.copy(copy_in, writer=QueuedLibpqWriter(cur)) as copy:
            chunks = copy_chunks(itertools.chain([first], rest), plan, target, counts, lineage)
            try:
                with closing(chunks):  # its encoder thread ends with the COPY, however the COPY ends
                    copy.write(SIGNATURE)
                    for chunk in chunks:
                        copy.write(chunk)
                    copy.write(TRAILER)
            except BaseException as exc:
                stopped = exc
                raise _CopyStopped from None
    except _CopyStopped:
        assert stopped is not None
        try:
            raise stopped from None
        finally:
            stopped = None  # no reference cycle through this frame: the error's traceback is freed with it
    return counts


class _CopyStopped(Exception):
    """The client ended the COPY early. psycopg sends the ending exception's text to the server, which logs
    it ("COPY from stdin failed: error from Python: ..."); this one says nothing, the real reason (which
    may quote a value, e.g. a transform error) stays on the client and is re-raised there."""


def _execute(conn: psycopg.Connection, stmt: statements.sql.Composable | None, before: Hook | None = None) -> int:
    if stmt is None:
        return 0
    if before is not None:
        before(conn)
    with conn.cursor() as cur:
        cur.execute(stmt)
        return max(cur.rowcount, 0)


def _apply(
    conn: psycopg.Connection, plan: statements.LoadPlan, counts: CopyCounts, unique_keys: bool, before: Hook | None
) -> RowCounts:
    """Deduplicate, analyse, update, delete, insert; count what happened to every row (``before`` each)."""
    upserts, superseded = counts.upserts, 0
    if not unique_keys:
        superseded = _execute(conn, statements.drop_duplicate_keys(plan), before)
        if superseded:
            row = conn.execute(statements.count_upserts(plan)).fetchone()
            upserts = int(row[0]) if row else 0
    deletes = counts.rows - superseded - upserts
    _execute(conn, statements.analyze_temp(plan), before)
    updated = _execute(conn, statements.update_changed(plan), before)
    # A key is in at most one of the three sets (upsert and present, delete, upsert and absent), so the order
    # is free: deleting before inserting joins the deletes against the smaller table (a first load: empty).
    deleted = _execute(conn, statements.delete_marked(plan), before)
    inserted = _execute(conn, statements.insert_new(plan), before)
    return RowCounts(
        rows_in=counts.rows,
        inserted=inserted,
        updated=updated,
        deleted=deleted,
        unchanged=upserts - inserted - updated,
        not_found=deletes - deleted,
        superseded=superseded,
    )


def _upsert(
    conn: psycopg.Connection,
    plan: statements.LoadPlan,
    batches: Iterable[pa.RecordBatch],
    unique_keys: bool,
    work_mem: str,
    after_copy: Hook | None = None,
    before: Hook | None = None,
) -> RowCounts:
    """Inside the caller's transaction: temp table, COPY, apply (``before`` each long statement)."""
    conn.execute("SELECT set_config('work_mem', %s, true)", (work_mem,))
    for stmt in statements.create_temp(plan):
        conn.execute(stmt)
    counts = copy_batches(conn, plan, batches, before)
    if after_copy is not None:
        after_copy(conn)
    return _apply(conn, plan, counts, unique_keys, before)


def _with_rejected(applied: RowCounts, rejected: int) -> RowCounts:
    """The file's counts: the rows the statements applied, and the records left out under the threshold."""
    return replace(applied, rows_in=applied.rows_in + rejected, rejected=rejected)


def preview(
    conn: psycopg.Connection,
    contract: Contract,
    batches: Iterable[pa.RecordBatch],
    *,
    unique_keys: bool = False,
    work_mem: str = WORK_MEM,
) -> LoadResult:
    """What ``load`` would change, without changing anything: the same statements in a rolled-back transaction.

    The counts are exact (the database computed them); no ledger row is written and the ledger is not
    consulted, so a preview also answers "what would re-applying this already loaded file change?".
    """
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise LoadError("preview() needs a connection outside any transaction")
    plan = statements.LoadPlan(contract)
    with redacted_database_errors(), conn.transaction(force_rollback=True):
        conn.execute(statements.lock_feed(), (contract.feed,))
        applied = _upsert(conn, plan, batches, unique_keys, work_mem)
    return LoadResult(LedgerStatus.LOADED, applied)


def load(
    conn: psycopg.Connection,
    contract: Contract,
    batches: Iterable[pa.RecordBatch],
    *,
    file_name: str,
    sha256: str,
    business_date: dt.date | None,
    execution_name: str | None,
    rows_rejected: int = 0,
    file_rows: int | None = None,
    unique_keys: bool = False,
    work_mem: str = WORK_MEM,
    after_copy: Hook | None = None,
    limits: LoadLimits | None = None,
) -> LoadResult:
    """Load one file's staged batches (``stage_schema(contract)``, action column included) in one transaction.

    ``conn`` must not be inside a transaction (use an autocommit connection, as ``etl.db.connect`` gives).
    Several rows with one key: the last in batch order wins. ``unique_keys=True`` skips that step (a
    hash aggregate over the whole file) when the caller already proved the keys unique (validation
    rule R005 passed); if it lied, the INSERT fails on the primary key and the load rolls back.
    ``rows_rejected``: the file's records left out under the reject threshold (counted in rows_in).
    ``file_rows``: the file's detail records, when known; a SKIPPED file (its batches are not read) counts
    them as skipped. ``work_mem`` applies to this transaction only. ``after_copy`` is a test hook run right
    after the COPY, inside the transaction. Database errors leave with their primary message only.
    ``limits``: the lock and statement timeouts of the transaction (none when omitted; ``etl.db.limits``).
    """
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise LoadError("load() needs a connection outside any transaction: it commits its own")
    plan = statements.LoadPlan(contract)
    started = dt.datetime.now(dt.UTC)
    common = {
        "feed": contract.feed,
        "file_name": file_name,
        "sha256": sha256,
        "business_date": business_date,
        "execution_name": execution_name,
        "started_at": started,
    }
    before = limits.before_statement if limits is not None else None
    named = limits.timeouts_named() if limits is not None else contextlib.nullcontext()
    with named, redacted_database_errors(), conn.transaction():
        if limits is not None:
            limits.before_feed_lock(conn)
        conn.execute(statements.lock_feed(), (contract.feed,))
        if before is not None:
            before(conn)
        if ledger.already_loaded(conn, sha256):
            total = file_rows or 0
            skipped = RowCounts(
                rows_in=total, skipped=max(total - rows_rejected, 0), rejected=min(rows_rejected, total)
            )
            ledger_id = ledger.insert_row(conn, status=LedgerStatus.SKIPPED, counts=skipped, **common)
            return LoadResult(LedgerStatus.SKIPPED, skipped, ledger_id)
        applied = _upsert(conn, plan, batches, unique_keys, work_mem, after_copy, before)
        counts = _with_rejected(applied, rows_rejected)
        ledger_id = ledger.insert_row(conn, status=LedgerStatus.LOADED, counts=counts, **common)
    return LoadResult(LedgerStatus.LOADED, counts, ledger_id)
