"""Projections: read models built from events, in the same transaction as the append.

A projection handles a set of event types and applies a *batch* of them at once. The live append path
calls it with the events of one append; a rebuild calls it with thousands at a time. Both go through the
same `apply`, so a rebuilt table equals the live one by construction (and a test checks it).

A projection may also offer `append_statement`: the same write as one SQL statement that travels in the append's
own round trip (PostgreSQL, appends outside a transaction). It must write exactly what `apply` writes; tests
compare the two field by field.
"""

import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, ClassVar

import orjson
from django.conf import settings
from django.db import connections, models

from .events import PendingEvent, RecordedEvent


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
    # False: the projection never reads an event's metadata, so a rebuild may feed it events whose metadata is
    # left empty (NO_METADATA) instead of decoding a million documents it would not look at.
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
        # Raw DELETE: no cascade collection, and foreign keys between projection tables are deferred, so
        # rows put back by the replay satisfy them again before the rebuild commits.
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


def fast_timestamps(cursor) -> None:
    """Read timestamptz columns of this Django cursor's next fetch with psycopg's C loader (PostgreSQL).

    Django's own loader pins every value's tzinfo in Python, a few microseconds a value, which a rebuild pays
    millions of times. The C loader returns the same instants, in the session's time zone (UTC, as Django sets
    it up when USE_TZ is on).
    """
    if cursor.db.vendor != "postgresql" or not settings.USE_TZ:
        return
    from psycopg.types.datetime import TimestamptzLoader  # imported here: SQLite needs no driver

    cursor.cursor.adapters.register_loader("timestamptz", TimestamptzLoader)


def _json_value(value):
    # What orjson leaves to us: Decimals and times with a time zone (it writes the rest as isoformat() would).
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    raise TypeError(f"No JSON form for {type(value).__name__} in a projection row")


def _rows_json(model: type[models.Model], rows: Sequence[dict]) -> str:
    columns = {f.attname: f.column for f in model._meta.concrete_fields if f.attname != f.column}
    if columns:
        rows = [{columns.get(k, k): v for k, v in row.items()} for row in rows]
    # orjson: a rebuild encodes a million values, and json.dumps called _json_value for every timestamp.
    return orjson.dumps(rows, default=_json_value, option=orjson.OPT_NON_STR_KEYS).decode()


def _fields(model: type[models.Model], attnames) -> list[models.Field]:
    by_attname = {f.attname: f for f in model._meta.concrete_fields}
    return [by_attname[name] for name in attnames]


# Helpers for projections that read and write rows as dicts of attnames rather than model instances, which a
# rebuild builds and adapts by the million. Values: str, numbers, bools, None, dicts, lists, dates and times,
# UUIDs, Decimals. One row (the live append path) is one plain statement; many rows on PostgreSQL travel as one
# JSON document expanded by json_populate_recordset(), which costs a little more per statement but nothing per
# value adapted, and replaces Django's bulk_update, whose CASE WHEN per field with a branch per row the server
# evaluates for every row (quadratic in the batch).


def rows_by_pk(model: type[models.Model], pks, *, using: str) -> list[dict]:
    """The rows with these primary keys, each a dict of every concrete field's attname."""
    pks = list(pks)
    if not pks:
        return []
    connection = connections[using]
    fields = model._meta.concrete_fields
    if connection.vendor != "postgresql" or any(hasattr(f, "from_db_value") for f in fields):
        return list(model._default_manager.db_manager(using).filter(pk__in=pks).values(*(f.attname for f in fields)))
    quote, pk = connection.ops.quote_name, model._meta.pk
    # The keys as one JSON array: an IN list of thousands of parameters costs more to build than to run.
    with connection.cursor() as cursor:
        fast_timestamps(cursor)
        cursor.execute(
            f"SELECT {', '.join(quote(f.column) for f in fields)} FROM {quote(model._meta.db_table)} "  # noqa: S608
            f"WHERE {quote(pk.column)} IN (SELECT value::{pk.db_type(connection)} FROM json_array_elements_text(%s))",
            [json.dumps([str(key) for key in pks])],
        )
        names = [f.attname for f in fields]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def rows_insert(model: type[models.Model], rows: Sequence[dict], *, using: str) -> None:
    """Insert rows, each a dict holding every concrete field's attname."""
    if not rows:
        return
    connection = connections[using]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    if len(rows) == 1:
        (row,) = rows
        fields = _fields(model, row)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
                f"VALUES ({', '.join(['%s'] * len(fields))})",
                [f.get_db_prep_save(row[f.attname], connection) for f in fields],
            )
    elif connection.vendor == "postgresql":
        names = ", ".join(quote(f.column) for f in model._meta.concrete_fields)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM json_populate_recordset(NULL::{table}, %s)",  # noqa: S608
                [_rows_json(model, rows)],
            )
    else:
        model._default_manager.db_manager(using).bulk_create([model(**row) for row in rows])


def rows_update(model: type[models.Model], rows: Sequence[dict], fields: Sequence[str], *, using: str) -> int:
    """Write `fields` (attnames) of existing rows, each a dict holding its primary key and those fields; primary
    keys distinct. Returns how many rows were found."""
    if not rows:
        return 0
    connection = connections[using]
    quote = connection.ops.quote_name
    table, pk = quote(model._meta.db_table), model._meta.pk
    columns = _fields(model, fields)
    if len(rows) == 1:
        (row,) = rows
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET {', '.join(f'{quote(f.column)} = %s' for f in columns)} "  # noqa: S608
                f"WHERE {quote(pk.column)} = %s",
                [f.get_db_prep_save(row[f.attname], connection) for f in (*columns, pk)],
            )
            return cursor.rowcount
    if connection.vendor != "postgresql":
        return model._default_manager.db_manager(using).bulk_update([model(**row) for row in rows], fields)
    key = quote(pk.column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {', '.join(f'{quote(f.column)} = v.{quote(f.column)}' for f in columns)} "  # noqa: S608
            f"FROM json_populate_recordset(NULL::{table}, %s) AS v WHERE {table}.{key} = v.{key}",
            [_rows_json(model, rows)],
        )
        return cursor.rowcount


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
