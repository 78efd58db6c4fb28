"""Value types of the event store. Plain dataclasses, free of Django, so activities and tests can build them."""

import uuid
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class EventMetadata:
    """Where an event came from. Workflow steps fill the workflow fields; request code fills acting_user_id."""

    correlation_id: str = ""
    causation_id: str = ""
    workflow_id: str = ""
    run_id: str = ""
    workflow_type: str = ""
    step: str = ""
    attempt: int = 0
    acting_user_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        # Empty fields are left out so stored metadata stays small and readable in the admin.
        return {name: value for name in _METADATA_FIELDS if (value := getattr(self, name)) not in ("", 0, None)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "EventMetadata":
        """Unknown keys (written by a newer version) are ignored."""
        return cls(**{k: v for k, v in data.items() if k in _METADATA_FIELD_SET})


# Field names computed once: every append writes metadata and a rebuild reads it for millions of events.
_METADATA_FIELDS = tuple(f.name for f in fields(EventMetadata))
_METADATA_FIELD_SET = frozenset(_METADATA_FIELDS)


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append. `idempotency_key` makes a retried append return the stored event instead."""

    event_type: str
    data: dict[str, Any]
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """An event on its way into the store, before the append's statement draws its position and stream
    version. Projection.append_statement builds its write from these."""

    event_id: uuid.UUID
    stream_type: str
    stream_id: str
    event_type: str
    schema_version: int
    data: dict[str, Any]
    metadata: EventMetadata
    created_at: datetime
    created_by_id: int | None = None
    idempotency_key: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedEvent(PendingEvent):
    """A stored event: a pending one with its global position and its version in the stream."""

    position: int
    stream_version: int
