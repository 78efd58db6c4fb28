"""Projections: read models built from events, in the same transaction as the append.

A projection handles a set of event types and applies a *batch* of them at once. The live append path
calls it with the events of one append; a rebuild calls it with thousands at a time. Both go through the
same `apply`, so a rebuilt table equals the live one by construction (and a test checks it).

A projection may also offer `append_statement`: the same write as one SQL statement that travels in the append's
own statement (`eventstore.postgres`, the fast path). It must write exactly what `apply` writes; the contract
tests run both paths and compare the tables with a rebuild's.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from django.db import connections, models

from .events import PendingEvent, RecordedEvent
from .rows import rows_update  # noqa: F401  re-exported: invitations.services writes delivery rows with it


@dataclass(frozen=True, slots=True)
class AppendStatement:
    """A projection's write for one append, as one data-modifying SQL statement with `%s` placeholders."""

    sql: str
    params: Sequence[Any]


class Projection:
    name: ClassVar[str]
    handles: ClassVar[frozenset[str]]
    # Tables this projection owns, emptied before a rebuild (children first).
    models: ClassVar[Sequence[type[models.Model]]]
    # False: it never reads an event's metadata, so a rebuild may leave it empty (NO_METADATA) and not decode it.
    reads_metadata: ClassVar[bool] = True

    def apply(self, events: Sequence[RecordedEvent], *, using: str) -> None:
        raise NotImplementedError

    def append_statement(self, events: Sequence[PendingEvent], *, using: str) -> AppendStatement | None:
        """Optional: what `apply` would write for these events (those of one append that this projection handles),
        as one PostgreSQL statement run in the append's own statement; None leaves them to `apply`.

        The statement (INSERT, UPDATE or DELETE ... RETURNING) runs as a data-modifying CTE after the one that
        inserts the events, named `appended` (columns event_id, position, stream_version; joined on event_id
        for a batch). It takes stream versions from there and writes only rows joined to it, so it writes nothing
        when the insert wrote nothing (an idempotent replay, a version conflict). It returns one row per event
        applied: fewer (an unknown row) rolls the append back, and the general path's `apply` reports the error.
        It shares the insert's snapshot, so it sees neither the new events nor other CTEs' writes.
        """
        return None

    def replay(self, *, using: str) -> "Replay":
        """What a rebuild feeds the events to, batch by batch, and closes at the end. By default each batch is
        applied as it comes; a projection may return its own, which keeps rows in memory across batches and
        writes them less often, as long as what it leaves behind equals what `apply` writes."""
        return Replay(self, using)

    def reset(self, *, using: str) -> None:
        # Raw DELETE, no cascade collection: foreign keys between projection tables are checked at the rebuild's commit.
        with connections[using].cursor() as cursor:
            for model in self.models:
                cursor.execute(f"DELETE FROM {connections[using].ops.quote_name(model._meta.db_table)}")  # noqa: S608


class Replay:
    """A rebuild's feed into one projection: `apply` for each batch in position order, then `close`."""

    def __init__(self, projection: Projection, using: str) -> None:
        self.projection, self.using = projection, using

    def apply(self, events: Sequence[RecordedEvent]) -> None:
        self.projection.apply(events, using=self.using)

    def close(self) -> None:
        """Write whatever is still held."""


_by_name: dict[str, Projection] = {}
_by_event_type: dict[str, list[Projection]] = defaultdict(list)


def register(cls: type[Projection]) -> type[Projection]:
    """Class decorator; called at import time from each app's `projections` module (imported in ready())."""
    if cls.name in _by_name:
        raise ValueError(f"Projection {cls.name!r} is registered twice")
    instance = cls()
    _by_name[cls.name] = instance
    for event_type in cls.handles:
        _by_event_type[event_type].append(instance)
    return cls


def unregister(name: str) -> None:
    projection = _by_name.pop(name)
    for event_type in projection.handles:
        _by_event_type[event_type].remove(projection)


def get(name: str) -> Projection:
    try:
        return _by_name[name]
    except KeyError:
        raise KeyError(f"No projection named {name!r}; known: {', '.join(sorted(_by_name)) or 'none'}") from None


def registered() -> list[Projection]:
    return list(_by_name.values())


def handling(event_types: Iterable[str]) -> list[Projection]:
    seen: dict[str, Projection] = {}
    for event_type in event_types:
        for projection in _by_event_type.get(event_type, ()):
            seen.setdefault(projection.name, projection)
    return list(seen.values())
