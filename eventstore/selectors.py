"""Reads of the event store: streams, catch-up reads, idempotency keys, and the batches a rebuild replays."""

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Final

import orjson
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Max
from django.db.models.sql.constants import CURSOR

from . import projections as projection_registry
from .catalogue import schema_version, upcast
from .events import EventMetadata, RecordedEvent
from .loaders import fast_timestamps
from .models import Event

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


_COLUMNS_WITHOUT_METADATA = tuple(c for c in _COLUMNS if c not in ("metadata", "correlation_id", "workflow_id"))
_JSON_COLUMNS = frozenset({"data", "metadata"})

NO_METADATA: Final = EventMetadata()
"""The metadata of events read for a projection that declared it never reads metadata (a rebuild's)."""


def json_document(value):
    """A stored JSON document (or a value the driver already decoded) as Python objects."""
    if not isinstance(value, str):
        return value
    try:
        return orjson.loads(value)  # a rebuild decodes two documents per event, millions of them
    except orjson.JSONDecodeError:  # what orjson refuses (integers beyond 64 bits), json reads
        return json.loads(value)


def _event(position, event_id, stream_type, stream_id, version, event_type, stored_version, data, at, by, key, meta):
    current = schema_version(event_type)
    data = json_document(data)  # upcast() only for old payloads: most are current, and a rebuild reads millions
    return RecordedEvent(
        position=position,
        event_id=event_id,
        stream_type=stream_type,
        stream_id=stream_id,
        stream_version=version,
        event_type=event_type,
        schema_version=current,
        data=upcast(event_type, stored_version, data) if stored_version < current else data,
        metadata=meta,
        created_at=at,
        created_by_id=by,
        idempotency_key=key,
    )


def _recorded_without_metadata(row: tuple) -> RecordedEvent:
    return _event(*row, NO_METADATA)


def _recorded(row: tuple) -> RecordedEvent:
    # Columns as _COLUMNS lists them: the metadata document, then correlation and workflow ids, sit at 8 to 10.
    document = {**(json_document(row[8]) or {}), "correlation_id": row[9], "workflow_id": row[10]}
    return _event(*row[:8], *row[11:], EventMetadata.from_json(document))


def _read(queryset, *, with_metadata: bool = True) -> list[RecordedEvent]:
    # Rows straight from the cursor, JSON decoded in _recorded: Django's per-value converter loop cost more.
    names = _COLUMNS if with_metadata else _COLUMNS_WITHOUT_METADATA
    compiler = queryset.values_list(*names).query.get_compiler(using=queryset.db)
    cursor = compiler.execute_sql(CURSOR)
    if cursor is None:  # the query can match nothing (an empty IN list)
        return []
    with cursor:
        fast_timestamps(cursor)
        rows = cursor.fetchall()
    columns = [select[0] for select in compiler.select[: compiler.col_count]]
    converters = {i: c for i, c in compiler.get_converters(columns).items() if names[i] not in _JSON_COLUMNS}
    if rows and converters:
        rows = compiler.apply_converters(rows, converters)
    return [_recorded(row) for row in rows] if with_metadata else [_recorded_without_metadata(row) for row in rows]


def stream_events(*, stream_type: str, stream_id: str, using: str = DEFAULT_DB_ALIAS) -> list[RecordedEvent]:
    """A stream's events in version order."""
    qs = Event.objects.using(using).filter(stream_type=stream_type, stream_id=str(stream_id))
    return _read(qs.order_by("stream_version"))


def stream_version(*, stream_type: str, stream_id: str, using: str = DEFAULT_DB_ALIAS) -> int:
    qs = Event.objects.using(using).filter(stream_type=stream_type, stream_id=str(stream_id))
    return qs.aggregate(v=Max("stream_version"))["v"] or 0


def last_position(*, using: str = DEFAULT_DB_ALIAS) -> int:
    """The position of the newest event (0 for an empty store). It rises with every append; an append rolled back
    leaves a gap, so it is not a count."""
    return Event.objects.using(using).aggregate(p=Max("position"))["p"] or 0


def events_after(
    *,
    position: int,
    limit: int = 1000,
    event_types: Iterable[str] | None = None,
    with_metadata: bool = True,
    using: str = DEFAULT_DB_ALIAS,
) -> list[RecordedEvent]:
    """Events with a greater position, oldest first: the read of a catch-up consumer.

    Safe to checkpoint on the last position returned: no event with a lower position can commit later.
    `with_metadata=False` leaves every event's metadata empty (NO_METADATA), for readers that never use it.
    """
    qs = Event.objects.using(using).filter(position__gt=position)
    if event_types is not None:
        qs = qs.filter(event_type__in=list(event_types))
    return _read(qs.order_by("position")[:limit], with_metadata=with_metadata)


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
    with_metadata: bool = True,
    using: str = DEFAULT_DB_ALIAS,
) -> Iterator[list[RecordedEvent]]:
    """Every event from position 0, in batches: keyset pagination keeps memory bounded by one batch."""
    last = 0
    types = list(event_types) if event_types is not None else None
    read = {"event_types": types, "with_metadata": with_metadata, "using": using}
    while batch := events_after(position=last, limit=batch_size, **read):
        yield batch
        last = batch[-1].position


def projections_event_count(*, names: Sequence[str] | None = None, using: str = DEFAULT_DB_ALIAS) -> int:
    """How many events a rebuild of these projections (all if none) replays."""
    chosen = [projection_registry.get(n) for n in names] if names else projection_registry.registered()
    event_types = set().union(*(p.handles for p in chosen)) if chosen else set()
    return Event.objects.using(using).filter(event_type__in=event_types).count()
