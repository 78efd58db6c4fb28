"""Projections: read models built from events, in the same transaction as the append.

A projection handles a set of event types and applies a *batch* of them at once. The live append path
calls it with the events of one append; a rebuild calls it with thousands at a time. Both go through the
same `apply`, so a rebuilt table equals the live one by construction (and a test checks it).
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import ClassVar

from django.db import connections, models

from .events import RecordedEvent


class Projection:
    name: ClassVar[str]
    handles: ClassVar[frozenset[str]]
    # Tables this projection owns, emptied before a rebuild (children first).
    models: ClassVar[Sequence[type[models.Model]]]

    def apply(self, events: Sequence[RecordedEvent], *, using: str) -> None:
        raise NotImplementedError

    def reset(self, *, using: str) -> None:
        # Raw DELETE: no cascade collection, and foreign keys between projection tables are deferred, so
        # rows put back by the replay satisfy them again before the rebuild commits.
        with connections[using].cursor() as cursor:
            for model in self.models:
                cursor.execute(f"DELETE FROM {connections[using].ops.quote_name(model._meta.db_table)}")  # noqa: S608


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
