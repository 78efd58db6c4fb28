"""The PostgreSQL fast path of an append, held equal to the plain recorder (`eventstore.recorder`) by the contract
tests, which run every case through both.

Outside a transaction, when every projection that handles the events offers an `append_statement`, the append is
one statement, its own transaction: the lock comes first inside it; the insert checks the expected version and
the idempotency keys; each projection's statement runs as a data-modifying CTE joined to the insert's rows;
`eventstore_append_check()` (migration 0003) rolls everything back if a projection wrote fewer rows than it had
events. Its snapshot is older than its lock: an append committed while it waited is invisible to its version and
key checks, but not to the unique indexes, so ON CONFLICT makes it write nothing.

Otherwise, or when that statement wrote nothing or failed on the data, a checked insert: in a transaction, the
lock, then the same insert (a fresh snapshot, so its checks are exact), then the projections' `apply`. When that
insert writes nothing, the plain recorder's checks tell a stored key (a retry) from a ConcurrencyError.

psycopg prepares the statements when the connection asks it to (DATABASES OPTIONS `server_side_binding` and
`prepare_threshold`); with Django's default client-side binding they are parsed and planned on every append.
"""

from typing import Final

import orjson
from django.db import DatabaseError, DataError, IntegrityError, connections, transaction

from . import projections as projection_registry
from .catalogue import schema_version
from .events import RecordedEvent
from .recorder import APPEND_LOCK_KEY, Append, append_check, append_lock_take, projections_apply

# Raised by eventstore_append_check() (migration 0003) when an append statement wrote fewer rows than it should.
APPEND_CHECK_SQLSTATE: Final = "A4C01"

_COLUMNS: Final = (
    "event_id, stream_type, stream_id, stream_version, event_type, schema_version, data, metadata, "
    "correlation_id, workflow_id, idempotency_key, created_at, created_by_id"
)


def _insert_sql(rows: int, keys: int, *, take_lock: bool) -> str:
    """An insert of the batch that writes nothing if the stream is elsewhere or a key is stored; `take_lock`: it
    takes the append lock itself, before it draws positions.

    Only placeholders are interpolated (one group per row and per key); values are parameters.
    """
    values = ", ".join(["(%s::uuid, %s::int, %s, %s::int, %s, %s)"] * rows)
    stored_keys = (
        f"AND NOT EXISTS (SELECT 1 FROM eventstore_event WHERE idempotency_key IN ({', '.join(['%s'] * keys)})) "  # noqa: S608
        if keys
        else ""
    )
    lock = f"CROSS JOIN (SELECT pg_advisory_xact_lock({APPEND_LOCK_KEY})) AS held " if take_lock else ""
    return (
        f"INSERT INTO eventstore_event ({_COLUMNS}) "  # noqa: S608
        "SELECT v.id, %s, %s, cur.version + v.n, v.type, v.sv, v.data::jsonb, %s::jsonb, %s, %s, "
        "v.key, %s::timestamptz, %s::int "
        f"FROM (VALUES {values}) AS v(id, n, type, sv, data, key) {lock}"
        "CROSS JOIN (SELECT coalesce(max(stream_version), 0) AS version FROM eventstore_event "
        "WHERE stream_type = %s AND stream_id = %s) AS cur "
        f"WHERE (%s::int IS NULL OR cur.version = %s::int) {stored_keys}"
        "ON CONFLICT DO NOTHING RETURNING event_id, position, stream_version"
    )


_INSERTS: dict[tuple[int, int], str] = {}


def _insert_params(append: Append) -> list:
    """The insert's parameters in the order its placeholders come: select list, VALUES rows, stream, expectation."""
    params: list = [
        append.stream_type,
        append.stream_id,
        orjson.dumps(append.metadata_json).decode(),
        append.correlation_id,
        append.workflow_id,
        append.created_at,
        append.created_by_id,
    ]
    for n, (event, event_id, payload) in enumerate(
        zip(append.events, append.event_ids, append.payloads, strict=True), start=1
    ):
        params += [event_id, n, event.event_type, schema_version(event.event_type), payload, event.idempotency_key]
    return [*params, append.stream_type, append.stream_id, append.expected, append.expected, *append.keys]


def _statement_sql(shape: tuple, connection) -> str:
    """The insert, the projections' CTEs and the check of what they wrote, for one shape of append."""
    from psycopg.sql import Literal  # imported here: SQLite needs no driver

    events, keys, *projections = shape
    checks = [("c.n", events, "eventstore_event")] if events > 1 else []  # ON CONFLICT DO NOTHING could skip a row
    ctes = []
    for i, (sql, handled, name) in enumerate(projections):
        ctes.append(f", p{i} AS ({sql})")
        checks.append((f"(SELECT count(*) FROM p{i})", handled, name))  # noqa: S608  names only
    select = "SELECT a.position, a.stream_version FROM appended a"
    if checks:
        raw = connection.connection
        select += ", (SELECT count(*) AS n FROM appended) c WHERE " + " AND ".join(  # noqa: S608  literals quoted
            f"eventstore_append_check(c.n, {written}, {int(expected)}, {Literal(name).as_string(raw)})"
            for written, expected, name in checks
        )
    return f"WITH appended AS ({_insert_sql(events, keys, take_lock=True)}){''.join(ctes)} {select}"


_STATEMENTS: dict[tuple, str] = {}
_MAX_STATEMENTS: Final = 256  # shapes kept; a shape is one per event count, key count and projection statement


def _statement(append: Append, connection, using: str) -> tuple[str, list] | None:
    """The whole append as one statement with its parameters; None if a projection that handles these events
    has no append statement for them."""
    shape: list = [len(append.events), len(append.keys)]
    params = _insert_params(append)
    pending = None
    for projection in projection_registry.handling({e.event_type for e in append.events}):
        pending = pending or append.pending()
        handled = [e for e in pending if e.event_type in projection.handles]
        try:
            statement = projection.append_statement(handled, using=using)
        except Exception:  # noqa: BLE001  the plain recorder's apply() reports it as a ProjectionError
            return None
        if statement is None:
            return None
        shape.append((statement.sql, len(handled), projection.name))
        params += statement.params
    key = tuple(shape)
    if (sql := _STATEMENTS.get(key)) is None:
        sql = _statement_sql(key, connection)
        if len(_STATEMENTS) < _MAX_STATEMENTS:
            _STATEMENTS[key] = sql
    return sql, params


def _one_statement(append: Append, using: str) -> list[tuple[int, int]] | None:
    """The inserted rows' (position, stream_version); None if the statement wrote nothing or was not run."""
    connection = connections[using]
    if (statement := _statement(append, connection, using)) is None:
        return None
    try:
        with connection.cursor() as cursor:
            cursor.execute(*statement)
            return cursor.fetchall()
    except DatabaseError as exc:
        if isinstance(exc, IntegrityError | DataError) or getattr(exc.__cause__, "sqlstate", None) == (
            APPEND_CHECK_SQLSTATE
        ):
            return None
        raise


def _checked_insert(append: Append, using: str) -> list[RecordedEvent] | None:
    connection = connections[using]
    shape = (len(append.events), len(append.keys))
    if (sql := _INSERTS.get(shape)) is None:
        sql = _insert_sql(*shape, take_lock=False)
        if len(_INSERTS) < _MAX_STATEMENTS:
            _INSERTS[shape] = sql
    with transaction.atomic(using=using):
        append_lock_take(using)
        with connection.cursor() as cursor:
            cursor.execute(sql, _insert_params(append))
            rows = [(position, version) for _, position, version in cursor.fetchall()]
        if len(rows) != len(append.events):
            if not rows and append_check(append, using=using) is None:
                return None  # a key of the batch is stored: a retry, or a conflict the caller reports
            # The checks passed under the lock, so ON CONFLICT skipped a row for its event id.
            raise DatabaseError(f"The append wrote {len(rows)} of its {len(append.events)} events.")
        recorded = append.recorded(rows)
        projections_apply(recorded, using=using)
    return recorded


def events_record_fast(append: Append, *, using: str) -> list[RecordedEvent] | None:
    """`recorder.events_record()`, on PostgreSQL: in one round trip when the statement can decide alone."""
    connection = connections[using]
    if not connection.in_atomic_block and connection.get_autocommit() and (rows := _one_statement(append, using)):
        return append.recorded(rows)
    return _checked_insert(append, using)
