"""The plain event recorder, and the reference the fast path (`eventstore.postgres`) is held equal to.

One transaction: take the append lock, check the idempotency keys and the expected version, insert the events
through the ORM and apply the projections in Python. Works on PostgreSQL and SQLite.
"""

import uuid
from collections.abc import Sequence
from typing import Final

from django.db import connections, transaction
from django.utils import timezone

from . import projections as projection_registry
from .catalogue import schema_version
from .events import EventMetadata, NewEvent, PendingEvent, RecordedEvent
from .exceptions import ConcurrencyError, ProjectionError
from .models import Event
from .selectors import json_document, stream_version

# Key of the transaction-scoped advisory lock every append takes on PostgreSQL (arbitrary, fixed).
APPEND_LOCK_KEY: Final = 0x41_34_43_45  # "A4CE"


def append_lock_take(using: str) -> None:
    """Held until commit: positions are drawn and committed one writer at a time, so they become visible in
    increasing order. SQLite gets the same from its single write lock."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [APPEND_LOCK_KEY])


class Append:
    """One validated append on its way to a recorder: the events with their ids, time and encoded payloads."""

    def __init__(
        self,
        *,
        stream_type: str,
        stream_id: str,
        events: Sequence[NewEvent],
        payloads: Sequence[str],
        metadata: EventMetadata,
        expected: int | None,
        created_by_id: int | None,
    ) -> None:
        self.stream_type, self.stream_id, self.events, self.payloads = stream_type, stream_id, events, payloads
        self.metadata, self.expected, self.created_by_id = metadata, expected, created_by_id
        self.created_at = timezone.now()
        self.event_ids = [uuid.uuid4() for _ in events]
        self.keys = [e.idempotency_key for e in events if e.idempotency_key is not None]
        # The metadata document as stored: correlation and workflow ids have columns of their own.
        self.metadata_json = metadata.to_json()
        self.correlation_id = str(self.metadata_json.pop("correlation_id", ""))
        self.workflow_id = str(self.metadata_json.pop("workflow_id", ""))
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

    def recorded(self, rows: Sequence[tuple[int, int]]) -> list[RecordedEvent]:
        """The events as stored, from the inserted rows' (position, stream_version) in any order."""
        inserted = {version: position for position, version in rows}
        first = min(inserted)
        return [
            RecordedEvent(position=inserted[first + i], stream_version=first + i, **fields)
            for i, fields in enumerate(self._fields())
        ]


def events_record(append: Append, *, using: str) -> list[RecordedEvent] | None:
    """Store the append and apply its projections, all or nothing. None: an idempotency key of the batch is
    stored already, and nothing was written (the caller tells a retry from a conflict)."""
    with transaction.atomic(using=using):
        append_lock_take(using)
        if (version := append_check(append, using=using)) is None:
            return None
        stored = Event.objects.using(using).bulk_create(
            [
                Event(
                    event_id=event_id,
                    stream_type=append.stream_type,
                    stream_id=append.stream_id,
                    stream_version=version + n,
                    event_type=event.event_type,
                    schema_version=schema_version(event.event_type),
                    data=data,
                    metadata=append.metadata_json,
                    correlation_id=append.correlation_id,
                    workflow_id=append.workflow_id,
                    idempotency_key=event.idempotency_key,
                    created_at=append.created_at,
                    created_by_id=append.created_by_id,
                )
                for n, (event, event_id, data) in enumerate(
                    zip(append.events, append.event_ids, append.data, strict=True), start=1
                )
            ]
        )
        recorded = append.recorded([(row.position, row.stream_version) for row in stored])
        projections_apply(recorded, using=using)
    return recorded


def append_check(append: Append, *, using: str) -> int | None:
    """Under the append lock: the version the stream is at, or None if a key of the batch is stored already (the
    key comes first, so a retry is recognised even when its expected version is stale). Raises ConcurrencyError
    if the stream is not at the expected version."""
    if append.keys and Event.objects.using(using).filter(idempotency_key__in=append.keys).exists():
        return None
    actual = stream_version(stream_type=append.stream_type, stream_id=append.stream_id, using=using)
    if append.expected is not None and append.expected != actual:
        raise ConcurrencyError(append.stream_type, append.stream_id, append.expected, actual)
    return actual


def projections_apply(recorded: Sequence[RecordedEvent], *, using: str) -> None:
    """Apply the projections that handle these events, in the caller's transaction."""
    for projection in projection_registry.handling({e.event_type for e in recorded}):
        batch = [e for e in recorded if e.event_type in projection.handles]
        try:
            projection.apply(batch, using=using)
        except Exception as exc:
            raise ProjectionError(projection.name, batch[0].event_type, batch[0].position) from exc
