import json
from collections.abc import Iterable, Iterator
from dataclasses import fields

from django.db import DEFAULT_DB_ALIAS
from django.db.models import Max
from django.db.models.sql.constants import CURSOR

from .catalogue import schema_version, upcast
from .events import EventMetadata, RecordedEvent
from .models import Event
from .projections import fast_timestamps

_COLUMNS = (
    "position",
    "event_id",
    "stream_type",
    "stream_id",
    "stream_version",
    "event_type",
    "schema_version",
    "data",
    "metadata",
    "correlation_id",
    "workflow_id",
    "created_at",
    "created_by_id",
    "idempotency_key",
)


_JSON_COLUMNS = frozenset({_COLUMNS.index("data"), _COLUMNS.index("metadata")})
_METADATA_FIELDS = frozenset(f.name for f in fields(EventMetadata))
_raw_decode = json.JSONDecoder().raw_decode


def _json(value):
    # raw_decode skips json.loads' two whitespace scans; stored JSON (jsonb output, json.dumps) has none up front.
    if not isinstance(value, str):
        return value
    try:
        return _raw_decode(value)[0]
    except ValueError:
        return json.loads(value)


def _recorded(row: tuple) -> RecordedEvent:
    (
        position,
        event_id,
        stream_type,
        stream_id,
        version,
        event_type,
        stored_version,
        data,
        metadata,
        correlation_id,
        workflow_id,
        created_at,
        created_by_id,
        key,
    ) = row
    # EventMetadata.from_json, without rebuilding the set of field names for every event.
    metadata = {k: v for k, v in (_json(metadata) or {}).items() if k in _METADATA_FIELDS}
    metadata["correlation_id"], metadata["workflow_id"] = correlation_id, workflow_id
    current = schema_version(event_type)
    data = _json(data)  # upcast() only for old payloads: most are current, and a rebuild reads millions
    return RecordedEvent(
        position=position,
        event_id=event_id,
        stream_type=stream_type,
        stream_id=stream_id,
        stream_version=version,
        event_type=event_type,
        schema_version=current,
        data=upcast(event_type, stored_version, data) if stored_version < current else data,
        metadata=EventMetadata(**metadata),
        created_at=created_at,
        created_by_id=created_by_id,
        idempotency_key=key,
    )


def _read(queryset) -> list[RecordedEvent]:
    # Rows straight from the cursor: Django's per-value converter loop cost more than the decoding on a rebuild.
    # JSON is decoded in _recorded; the backend's other converters (SQLite's dates and UUIDs) still apply.
    compiler = queryset.values_list(*_COLUMNS).query.get_compiler(using=queryset.db)
    cursor = compiler.execute_sql(CURSOR)
    if cursor is None:  # the query can match nothing (an empty IN list)
        return []
    with cursor:
        fast_timestamps(cursor)
        rows = cursor.fetchall()
    columns = [select[0] for select in compiler.select[: compiler.col_count]]
    converters = {i: c for i, c in compiler.get_converters(columns).items() if i not in _JSON_COLUMNS}
    if rows and converters:
        rows = compiler.apply_converters(rows, converters)
    return [_recorded(row) for row in rows]


def stream_events(*, stream_type: str, stream_id: str, using: str = DEFAULT_DB_ALIAS) -> list[RecordedEvent]:
    """A stream's events in version order."""
    qs = Event.objects.using(using).filter(stream_type=stream_type, stream_id=str(stream_id))
    return _read(qs.order_by("stream_version"))


def stream_version(*, stream_type: str, stream_id: str, using: str = DEFAULT_DB_ALIAS) -> int:
    qs = Event.objects.using(using).filter(stream_type=stream_type, stream_id=str(stream_id))
    return qs.aggregate(v=Max("stream_version"))["v"] or 0


def events_after(
    *,
    position: int,
    limit: int = 1000,
    event_types: Iterable[str] | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> list[RecordedEvent]:
    """Events with a greater position, oldest first: the read of a catch-up consumer.

    Safe to checkpoint on the last position returned: no event with a lower position can commit later.
    """
    qs = Event.objects.using(using).filter(position__gt=position)
    if event_types is not None:
        qs = qs.filter(event_type__in=list(event_types))
    return _read(qs.order_by("position")[:limit])


def events_for_correlation(*, correlation_id: str, using: str = DEFAULT_DB_ALIAS) -> list[RecordedEvent]:
    qs = Event.objects.using(using).filter(correlation_id=str(correlation_id))
    return _read(qs.order_by("position"))


def events_for_keys(*, keys: Iterable[str], using: str = DEFAULT_DB_ALIAS) -> dict[str, RecordedEvent]:
    events = _read(Event.objects.using(using).filter(idempotency_key__in=list(keys)))
    return {e.idempotency_key: e for e in events}


def iter_event_batches(
    *,
    event_types: Iterable[str] | None = None,
    batch_size: int = 5000,
    using: str = DEFAULT_DB_ALIAS,
) -> Iterator[list[RecordedEvent]]:
    """Every event from position 0, in batches: keyset pagination keeps memory bounded by one batch."""
    last = 0
    types = list(event_types) if event_types is not None else None
    while batch := events_after(position=last, limit=batch_size, event_types=types, using=using):
        yield batch
        last = batch[-1].position
