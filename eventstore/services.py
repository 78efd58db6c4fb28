"""Writing to the event store: appends (with projections applied in the same transaction) and rebuilds."""

import hashlib
import itertools
import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Final
from weakref import WeakKeyDictionary

import orjson
from django.db import DEFAULT_DB_ALIAS, DatabaseError, DataError, IntegrityError, connections, transaction
from django.utils import timezone

from . import projections as projection_registry
from .catalogue import EVENT_TYPE_PATTERN, EventType, StreamType, schema_version
from .events import EventMetadata, NewEvent, PendingEvent, RecordedEvent
from .exceptions import ConcurrencyError, IdempotencyConflictError, InvalidEventError, ProjectionError
from .models import Event
from .selectors import events_for_keys, iter_event_batches, json_document, stream_version


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ANY: Final = _Any()
"""`expected_version=ANY` appends at the end of the stream, whatever its version."""

# Key of the transaction-scoped advisory lock every append takes on PostgreSQL (arbitrary, fixed).
APPEND_LOCK_KEY: Final = 0x41_34_43_45  # "A4CE"
MAX_BATCH: Final = 1000
# Events a rebuild reads and applies at a time: larger batches write each projection row fewer times (an
# organization's events spread over several batches cost an UPDATE per batch), 20,000 events stay a few tens of MB.
REBUILD_BATCH_SIZE: Final = 20_000

_KNOWN_EVENT_TYPES = frozenset(EventType)
_KNOWN_STREAM_TYPES = frozenset(StreamType)
# One encoder for every payload: json.dumps(..., allow_nan=False) builds a new one per call. (Not orjson, which
# writes NaN as null where a payload with NaN must be refused.)
_PAYLOAD_ENCODER: Final = json.JSONEncoder(allow_nan=False)


def _validate(stream_type: str, stream_id: str, events: Sequence[NewEvent]) -> list[str]:
    """Refuse a malformed batch; returns the events' payloads as JSON (encoded once, for the check and the insert)."""
    if stream_type not in _KNOWN_STREAM_TYPES:
        raise InvalidEventError(f"Unknown stream type {stream_type!r}; add it to eventstore.catalogue.StreamType.")
    if not stream_id or len(stream_id) > 64:
        raise InvalidEventError("Stream id must be 1 to 64 characters.")
    if not events:
        raise InvalidEventError("Nothing to append: the batch is empty.")
    if len(events) > MAX_BATCH:
        raise InvalidEventError(f"A batch holds at most {MAX_BATCH} events; got {len(events)}.")
    keys = [e.idempotency_key for e in events if e.idempotency_key is not None]
    if len(keys) != len(set(keys)):
        raise InvalidEventError("Two events in one batch share an idempotency key.")
    payloads = []
    for event in events:
        if not EVENT_TYPE_PATTERN.match(event.event_type) or event.event_type not in _KNOWN_EVENT_TYPES:
            raise InvalidEventError(
                f"Unknown event type {event.event_type!r}; event types come from eventstore.catalogue.EventType."
            )
        if not isinstance(event.data, dict):
            raise InvalidEventError(f"Event data must be a JSON object, not {type(event.data).__name__}.")
        try:
            payloads.append(_PAYLOAD_ENCODER.encode(event.data))
        except (TypeError, ValueError) as exc:
            raise InvalidEventError(f"Event data of {event.event_type} is not plain JSON: {exc}") from None
        if event.idempotency_key is not None and not 0 < len(event.idempotency_key) <= 255:
            raise InvalidEventError("An idempotency key must be 1 to 255 characters.")
    return payloads


_METADATA_FIELDS = tuple(f.name for f in fields(EventMetadata))
# The metadata copied into columns of their own, with the columns' sizes.
_METADATA_COLUMNS = {name: Event._meta.get_field(name).max_length for name in ("correlation_id", "workflow_id")}


def _validate_metadata(metadata: EventMetadata) -> None:
    for name, limit in _METADATA_COLUMNS.items():
        if len(str(getattr(metadata, name))) > limit:
            raise InvalidEventError(f"Metadata {name} must be at most {limit} characters.")


def _metadata_json(metadata: EventMetadata) -> dict:
    # EventMetadata.to_json() without dataclasses.asdict's recursive copy, a noticeable part of a single append.
    return {name: value for name in _METADATA_FIELDS if (value := getattr(metadata, name)) not in ("", 0, None)}


def _same_event(stored: RecordedEvent, stream_type: str, stream_id: str, new: NewEvent) -> str | None:
    """Why a stored event does not match a re-append under the same key, or None if it does."""
    if (stored.stream_type, stored.stream_id) != (stream_type, stream_id):
        return f"stored on stream {stored.stream_type}/{stored.stream_id}"
    if stored.event_type != new.event_type:
        return f"stored as {stored.event_type}"
    # Compare through JSON so tuples vs lists and the like do not count as a difference.
    if stored.data != json.loads(json.dumps(new.data)):
        return "stored with a different payload"
    return None


def _replayed(stream_type: str, stream_id: str, events: Sequence[NewEvent], using: str) -> list[RecordedEvent] | None:
    """The stored events if this batch was appended before under the same keys; None if it was not."""
    keys = [e.idempotency_key for e in events if e.idempotency_key is not None]
    if not keys:
        return None
    stored = events_for_keys(keys=keys, using=using)
    if not stored:
        return None
    for event in events:
        if event.idempotency_key is None or event.idempotency_key not in stored:
            missing = event.idempotency_key or "(no key)"
            raise IdempotencyConflictError(missing, "the batch was partly stored under other keys")
        if reason := _same_event(stored[event.idempotency_key], stream_type, stream_id, event):
            raise IdempotencyConflictError(event.idempotency_key, reason)
    return [stored[e.idempotency_key] for e in events]


def _insert_sql(
    vendor: str, rows: int, keys: int, returning: str = "position, stream_version", *, take_lock: bool = False
) -> str:
    """One statement that checks the expected version and the idempotency keys, and inserts the batch.

    It inserts nothing if the stream is elsewhere or any key is already stored; the caller then tells a retry
    from a conflict. Only placeholders are interpolated (one group per row and per key); values are parameters.
    `take_lock` (PostgreSQL): the statement takes the append lock itself, before it draws positions.
    """
    columns = (
        "event_id, stream_type, stream_id, stream_version, event_type, schema_version, data, metadata, "
        "correlation_id, workflow_id, idempotency_key, created_at, created_by_id"
    )
    # Checking the keys in the statement saves every append the SELECT of a separate replay check.
    stored_keys = (
        f"AND NOT EXISTS (SELECT 1 FROM eventstore_event WHERE idempotency_key IN ({', '.join(['%s'] * keys)})) "  # noqa: S608
        if keys
        else ""
    )
    if vendor == "postgresql":
        values = ", ".join(["(%s, %s::int, %s, %s::int, %s, %s)"] * rows)
        lock = f"CROSS JOIN (SELECT pg_advisory_xact_lock({APPEND_LOCK_KEY})) AS held " if take_lock else ""
        return (
            f"INSERT INTO eventstore_event ({columns}) "  # noqa: S608
            "SELECT v.id::uuid, %s, %s, cur.version + v.n, v.type, v.sv, v.data::jsonb, %s::jsonb, %s, %s, "
            "v.key, %s::timestamptz, %s::int "
            f"FROM (VALUES {values}) AS v(id, n, type, sv, data, key) {lock}"
            "CROSS JOIN (SELECT coalesce(max(stream_version), 0) AS version FROM eventstore_event "
            "WHERE stream_type = %s AND stream_id = %s) AS cur "
            f"WHERE (%s::int IS NULL OR cur.version = %s::int) {stored_keys}"
            f"ON CONFLICT DO NOTHING RETURNING {returning}"
        )
    values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * rows)
    return (
        f"INSERT INTO eventstore_event ({columns}) "  # noqa: S608
        "SELECT v.column1, %s, %s, cur.version + v.column2, v.column3, v.column4, v.column5, %s, %s, %s, "
        "v.column6, %s, %s "
        f"FROM (VALUES {values}) AS v "
        "CROSS JOIN (SELECT coalesce(max(stream_version), 0) AS version FROM eventstore_event "
        "WHERE stream_type = %s AND stream_id = %s) AS cur "
        f"WHERE (%s IS NULL OR cur.version = %s) {stored_keys}"
        f"ON CONFLICT DO NOTHING RETURNING {returning}"
    )


_LOCK_SQL: Final = "SELECT pg_advisory_xact_lock(%s)"
# Raised by eventstore_append_check() (migration 0003) when an append statement wrote fewer rows than it should.
APPEND_CHECK_SQLSTATE: Final = "A4C01"


def _take_append_lock(using: str) -> None:
    connection = connections[using]
    if connection.vendor == "postgresql":
        # Held until commit: positions are drawn and committed one writer at a time, so they become
        # visible in increasing order. SQLite gets the same from its single write lock.
        with connection.cursor() as cursor:
            cursor.execute(_LOCK_SQL, [APPEND_LOCK_KEY])


def _simple_queries(connection) -> bool:
    """Whether cursor.execute() sends a simple query, which may hold several statements (PostgreSQL).

    Django's psycopg 3 backend binds parameters on the client unless `server_side_binding` is on; psycopg then
    sends the query text in one Query message, whose statements the server runs in order, in one transaction.
    """
    from django.db.backends.postgresql.psycopg_any import is_psycopg3  # imported here: SQLite needs no driver

    return is_psycopg3 and connection.settings_dict["OPTIONS"].get("server_side_binding") is not True


def _locked_insert(cursor, connection, sql: str, params: list) -> list[tuple[int, int]]:
    """Take the append lock (PostgreSQL), then run the insert; returns the inserted (position, stream_version)."""
    if connection.vendor != "postgresql":
        cursor.execute(sql, params)
        return cursor.fetchall()
    if not _simple_queries(connection):
        cursor.execute(_LOCK_SQL, [APPEND_LOCK_KEY])
        cursor.execute(sql, params)
        return cursor.fetchall()
    # One round trip for both, each statement with its own snapshot. The INSERT's snapshot is taken once the lock
    # is granted, so it sees every append committed before (expected_version=ANY and the key check stay exact)
    # and draws positions under it.
    cursor.execute(f"{_LOCK_SQL}; {sql}", [APPEND_LOCK_KEY, *params])
    cursor.nextset()
    return cursor.fetchall()


class _Batch:
    """One append's events, checked and turned into the insert's parameters; shared by both paths."""

    def __init__(self, stream_type, stream_id, events, payloads, metadata, expected, created_by_id, connection):
        self.stream_type, self.stream_id, self.events, self.payloads = stream_type, stream_id, events, payloads
        self.metadata, self.expected, self.created_by_id = metadata, expected, created_by_id
        self.created_at = timezone.now()
        self.event_ids = [uuid.uuid4() for _ in events]
        self.keys = [e.idempotency_key for e in events if e.idempotency_key is not None]
        meta_json = _metadata_json(metadata)
        correlation_id = str(meta_json.pop("correlation_id", ""))
        workflow_id = str(meta_json.pop("workflow_id", ""))
        id_field, at_field = Event._meta.get_field("event_id"), Event._meta.get_field("created_at")
        # Parameters in the order the statement names them: select list, VALUES rows, stream, expectation.
        params: list = [
            stream_type,
            stream_id,
            orjson.dumps(meta_json).decode(),
            correlation_id,
            workflow_id,
            at_field.get_db_prep_value(self.created_at, connection),
            created_by_id,
        ]
        for n, (event, event_id, payload) in enumerate(zip(events, self.event_ids, payloads, strict=True), start=1):
            params += [
                id_field.get_db_prep_value(event_id, connection),
                n,
                event.event_type,
                schema_version(event.event_type),
                payload,
                event.idempotency_key,
            ]
        self.params = [*params, stream_type, stream_id, expected, expected, *self.keys]
        # The payloads as stored and read back: what projections and the caller get (tuples become lists...).
        self.data = [json_document(payload) for payload in payloads]

    def _fields(self) -> list[dict]:
        return [
            {
                "event_id": self.event_ids[i],
                "stream_type": self.stream_type,
                "stream_id": self.stream_id,
                "event_type": event.event_type,
                "schema_version": schema_version(event.event_type),
                "data": self.data[i],
                "metadata": self.metadata,
                "created_at": self.created_at,
                "created_by_id": self.created_by_id,
                "idempotency_key": event.idempotency_key,
            }
            for i, event in enumerate(self.events)
        ]

    def pending(self) -> list[PendingEvent]:
        return [PendingEvent(**fields) for fields in self._fields()]

    def recorded(self, rows: list[tuple[int, int]]) -> list[RecordedEvent]:
        inserted = {version: position for position, version in rows}
        first = min(inserted)
        return [
            RecordedEvent(position=inserted[first + i], stream_version=first + i, **fields)
            for i, fields in enumerate(self._fields())
        ]

    def not_appended(self, using: str, *, partly: bool = False) -> list[RecordedEvent]:
        """The insert wrote nothing (or `partly`: not all): the stored events if this batch was appended before under
        the same keys (a retry), else ConcurrencyError."""
        if not partly and (stored := _replayed(self.stream_type, self.stream_id, self.events, using)) is not None:
            return stored
        actual = stream_version(stream_type=self.stream_type, stream_id=self.stream_id, using=using)
        expected = actual if self.expected is None else self.expected
        raise ConcurrencyError(self.stream_type, self.stream_id, expected, actual)


def _statement_sql(shape: tuple, connection) -> str:
    """The insert, the projections' CTEs and the check of what they wrote, for one shape of append."""
    from psycopg.sql import Literal  # imported here: only the PostgreSQL fast path needs it

    events, keys, *projections = shape
    checks = [("c.n", events, "eventstore_event")] if events > 1 else []  # ON CONFLICT DO NOTHING could skip a row
    ctes = []
    for i, (sql, handled, name) in enumerate(projections):
        ctes.append(f", p{i} AS ({sql})")
        checks.append((f"(SELECT count(*) FROM p{i})", handled, name))  # noqa: S608  names only
    insert = _insert_sql("postgresql", events, keys, "event_id, position, stream_version", take_lock=True)
    select = "SELECT a.position, a.stream_version FROM appended a"
    if checks:
        raw = connection.connection
        select += ", (SELECT count(*) AS n FROM appended) c WHERE " + " AND ".join(  # noqa: S608  literals quoted
            f"eventstore_append_check(c.n, {written}, {int(expected)}, {Literal(name).as_string(raw)})"
            for written, expected, name in checks
        )
    return f"WITH appended AS ({insert}){''.join(ctes)} {select}"


_STATEMENTS: dict[tuple, str] = {}
_MAX_STATEMENTS: Final = 256  # shapes kept; a shape is one per event count, key count and projection statement


def _one_statement(batch: _Batch, connection, using: str) -> tuple[str, list] | None:
    """The insert and every projection's write as one statement, with its parameters; None if a projection that
    handles these events has no append statement for them."""
    shape: list = [len(batch.events), len(batch.keys)]
    params = list(batch.params)
    pending = None
    for projection in projection_registry.handling({e.event_type for e in batch.events}):
        pending = pending or batch.pending()
        handled = [e for e in pending if e.event_type in projection.handles]
        try:
            statement = projection.append_statement(handled, using=using)
        except Exception:  # noqa: BLE001  the general path's apply() raises it as a ProjectionError, unless it is a replay
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


# Statements prepared on each connection (SQL-level PREPARE, which lives as long as the session): the server then
# neither parses nor plans the append's big statement again (unprepared: about 390 µs of server CPU, prepared 130-150).
_prepared: WeakKeyDictionary = WeakKeyDictionary()
_MAX_PREPARED: Final = 64


def _numbered(sql: str) -> str:
    """Client-side binding's %s placeholders as PREPARE's $1, $2..., and %% back to %."""
    numbers = itertools.count(1)
    return re.sub(r"%[s%]", lambda m: f"${next(numbers)}" if m.group() == "%s" else "%", sql)


def _append_in_one_round_trip(batch: _Batch, connection, using: str) -> list[tuple[int, int]] | None:
    """Run the append as one statement, outside any transaction; None or no rows leave it to the general path.

    The statement is its own transaction. It takes the append lock before it draws positions and holds it to its
    commit, so positions still become visible in order. Its snapshot is older than the lock, though: an append
    committed while it waited is invisible to its version and key checks, but not to the unique indexes, so
    ON CONFLICT makes it write nothing, and the general path (lock first, then a fresh snapshot) decides: insert,
    replay or ConcurrencyError. A failure anywhere rolls everything back, so that path can run next; it reports a
    projection's error as a ProjectionError with its real cause. (A separate lock statement before this one cost
    every append a statement: about 5% of its time.)
    """
    if (statement := _one_statement(batch, connection, using)) is None:
        return None
    sql, params = statement
    raw = connection.connection
    names = _prepared.setdefault(raw, {})
    try:
        with connection.cursor() as cursor:
            if (name := names.get(sql)) is None and len(names) < _MAX_PREPARED:
                name = f"eventstore_append_{hashlib.sha1(sql.encode()).hexdigest()[:24]}"  # noqa: S324  a name, not a secret
                try:
                    cursor.execute(f"PREPARE {name} AS {_numbered(sql)}")
                except DatabaseError as exc:
                    if getattr(exc.__cause__, "sqlstate", None) != "42P05":  # prepared before on this session
                        raise
                names[sql] = name
            if name is not None:
                sql = f"EXECUTE {name}({', '.join(['%s'] * len(params))})"
            cursor.execute(sql, params)
            return cursor.fetchall()
    except DatabaseError as exc:
        sqlstate = getattr(exc.__cause__, "sqlstate", None)
        if sqlstate == "26000":  # the session lost its prepared statements (DISCARD ALL, a pooler): prepare again
            _prepared.pop(raw, None)
            return None
        if isinstance(exc, IntegrityError | DataError) or sqlstate == APPEND_CHECK_SQLSTATE:
            return None
        raise


def events_append(
    *,
    stream_type: str,
    stream_id: str | uuid.UUID,
    events: Sequence[NewEvent],
    expected_version: int | _Any = ANY,
    metadata: EventMetadata | None = None,
    created_by_id: int | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> list[RecordedEvent]:
    """Append `events` to one stream, all or nothing, and apply the projections that handle them.

    `expected_version` is the stream version the caller decided on (0 for a new stream); if the stream is
    elsewhere, `ConcurrencyError` is raised and nothing is written. Events with an idempotency key that was
    appended before come back as stored, without writing again.
    """
    stream_id = str(stream_id)
    payloads = _validate(stream_type, stream_id, events)
    metadata = metadata or EventMetadata()
    _validate_metadata(metadata)
    expected = None if expected_version is ANY else int(expected_version)
    connection = connections[using]
    batch = _Batch(stream_type, stream_id, events, payloads, metadata, expected, created_by_id, connection)

    # A one-round-trip attempt that wrote nothing (a replay, a conflict, a failure) leaves it to the general path
    # below, with the same ids and parameters.
    if (
        connection.vendor == "postgresql"
        and not connection.in_atomic_block
        and connection.get_autocommit()
        and _simple_queries(connection)
        and (rows := _append_in_one_round_trip(batch, connection, using))
    ):
        return batch.recorded(rows)

    with transaction.atomic(using=using):
        with connection.cursor() as cursor:
            rows = _locked_insert(
                cursor, connection, _insert_sql(connection.vendor, len(events), len(batch.keys)), batch.params
            )
        if len(rows) != len(events):
            return batch.not_appended(using, partly=bool(rows))
        recorded = batch.recorded(rows)
        _project(recorded, using)
    return recorded


def _project(recorded: Sequence[RecordedEvent], using: str) -> None:
    for projection in projection_registry.handling({e.event_type for e in recorded}):
        batch = [e for e in recorded if e.event_type in projection.handles]
        try:
            projection.apply(batch, using=using)
        except Exception as exc:
            raise ProjectionError(projection.name, batch[0].event_type, batch[0].position) from exc


def projections_rebuild(
    *,
    names: Sequence[str] | None = None,
    batch_size: int = REBUILD_BATCH_SIZE,
    on_progress: Callable[[int], None] | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> int:
    """Empty the named projections (all if none) and replay every event they handle from position 0.

    Runs in one transaction holding the append lock: readers see the old tables until the new ones commit,
    and no event can be appended between the replay's last read and the commit. Returns the events replayed.
    """
    chosen = [projection_registry.get(n) for n in names] if names else projection_registry.registered()
    event_types = set().union(*(p.handles for p in chosen)) if chosen else set()
    replayed = 0
    with transaction.atomic(using=using):
        _take_append_lock(using)
        for projection in chosen:
            projection.reset(using=using)
        replays = [(projection.handles, projection.replay(using=using)) for projection in chosen]
        with_metadata = any(projection.reads_metadata for projection in chosen)
        batches = iter_event_batches(
            event_types=event_types, batch_size=batch_size, with_metadata=with_metadata, using=using
        )
        for batch in batches:
            for handles, replay in replays:
                if matching := [e for e in batch if e.event_type in handles]:
                    replay.apply(matching)
            replayed += len(batch)
            if on_progress:
                on_progress(len(batch))
        for _, replay in replays:
            replay.close()
    return replayed


def projections_rebuild_count(*, names: Sequence[str] | None = None, using: str = DEFAULT_DB_ALIAS) -> int:
    chosen = [projection_registry.get(n) for n in names] if names else projection_registry.registered()
    event_types = set().union(*(p.handles for p in chosen)) if chosen else set()
    return Event.objects.using(using).filter(event_type__in=event_types).count()
