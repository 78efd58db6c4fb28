"""The event store's application service: appends (projections applied in the same transaction) and rebuilds.

It validates, chooses a recorder and gives idempotent retries their stored events. The recorders write:
`eventstore.recorder` (the plain reference, every backend) and `eventstore.postgres` (the fast path).
"""

import json
import uuid
from collections.abc import Callable, Sequence
from typing import Final

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from . import postgres
from . import projections as projection_registry
from .catalogue import EVENT_TYPE_PATTERN, EventType, StreamType
from .events import EventMetadata, NewEvent, RecordedEvent
from .exceptions import IdempotencyConflictError, InvalidEventError
from .models import Event
from .recorder import APPEND_LOCK_KEY, Append, append_lock_take, events_record
from .selectors import events_for_keys, iter_event_batches

__all__ = ["ANY", "APPEND_LOCK_KEY", "MAX_BATCH", "REBUILD_BATCH_SIZE", "events_append", "projections_rebuild"]


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ANY: Final = _Any()
"""`expected_version=ANY` appends at the end of the stream, whatever its version."""

MAX_BATCH: Final = 1000
# Events a rebuild reads and applies at a time: larger batches write each projection row fewer times.
REBUILD_BATCH_SIZE: Final = 20_000

_KNOWN_EVENT_TYPES = frozenset(EventType)
_KNOWN_STREAM_TYPES = frozenset(StreamType)
# One encoder, not json.dumps's per call; not orjson, which writes NaN as null where such a payload must be refused.
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


# The metadata copied into columns of their own, with the columns' sizes.
_METADATA_COLUMNS = {name: Event._meta.get_field(name).max_length for name in ("correlation_id", "workflow_id")}


def _validate_metadata(metadata: EventMetadata) -> None:
    for name, limit in _METADATA_COLUMNS.items():
        if len(str(getattr(metadata, name))) > limit:
            raise InvalidEventError(f"Metadata {name} must be at most {limit} characters.")


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


def _replayed(stream_type: str, stream_id: str, events: Sequence[NewEvent], using: str) -> list[RecordedEvent]:
    """The stored events of a batch a recorder found a key of stored already: a retry gets them back, anything
    else under those keys is a conflict."""
    keys = [e.idempotency_key for e in events if e.idempotency_key is not None]
    stored = events_for_keys(keys=keys, using=using)
    for event in events:
        if event.idempotency_key is None or event.idempotency_key not in stored:
            missing = event.idempotency_key or "(no key)"
            raise IdempotencyConflictError(missing, "the batch was partly stored under other keys")
        if reason := _same_event(stored[event.idempotency_key], stream_type, stream_id, event):
            raise IdempotencyConflictError(event.idempotency_key, reason)
    return [stored[e.idempotency_key] for e in events]


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
    append = Append(
        stream_type=stream_type,
        stream_id=stream_id,
        events=events,
        payloads=payloads,
        metadata=metadata,
        expected=expected,
        created_by_id=created_by_id,
    )
    record = postgres.events_record_fast if _fast_path(using) else events_record
    if (recorded := record(append, using=using)) is None:
        return _replayed(stream_type, stream_id, events, using)
    return recorded


def _fast_path(using: str) -> bool:
    # The setting is there to run the plain recorder on PostgreSQL too (the contract tests run both).
    return connections[using].vendor == "postgresql" and getattr(settings, "EVENTSTORE_APPEND_FAST_PATH", True)


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
        append_lock_take(using)
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
