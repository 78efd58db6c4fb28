class EventStoreError(Exception):
    """Base class for event store errors."""


class InvalidEventError(EventStoreError, ValueError):
    """An event was refused before anything was written (unknown type, payload not a JSON object...)."""


class ConcurrencyError(EventStoreError):
    """The stream moved on since the writer read it; nothing was written."""

    def __init__(self, stream_type: str, stream_id: str, expected: int, actual: int):
        self.stream_type, self.stream_id, self.expected, self.actual = stream_type, stream_id, expected, actual
        super().__init__(
            f"Stream {stream_type}/{stream_id} is at version {actual}, but the writer expected {expected}. "
            "Re-read the stream and decide again."
        )


class IdempotencyConflictError(EventStoreError):
    """An idempotency key was reused for a different event; nothing was written."""

    def __init__(self, key: str, reason: str):
        self.key = key
        super().__init__(f"Idempotency key {key!r} already names a different event ({reason}).")


class ProjectionError(EventStoreError):
    """A projector failed; the append was rolled back with it."""

    def __init__(self, projection: str, event_type: str, position: int):
        self.projection, self.event_type, self.position = projection, event_type, position
        super().__init__(
            f"Projection {projection!r} failed on {event_type} at position {position}; the append was rolled back."
        )
