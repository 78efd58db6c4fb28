"""Projection rows as dicts of attnames: the plain ORM versions, and the fast paths the projections use.

A rebuild reads and writes rows by the million, and model instances built and adapted value by value were a
large share of its time. Values: str, numbers, bools, None, dicts, lists, dates and times, UUIDs, Decimals.
The fast paths write one row as one plain statement and many rows on PostgreSQL as one JSON document expanded
by json_populate_recordset(), which adapts no value one by one and, unlike bulk_update's CASE WHEN per field
with a branch per row, is not quadratic in the batch. Tests hold each fast path equal to its ORM version.
"""

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time
from decimal import Decimal

import orjson
from django.db import connections, models

from .loaders import fast_timestamps

# --- Plain ORM versions ---------------------------------------------------------------------------------------


def rows_by_pk_orm(model: type[models.Model], pks: Iterable, *, using: str) -> list[dict]:
    """The rows with these primary keys, each a dict of every concrete field's attname."""
    names = [f.attname for f in model._meta.concrete_fields]
    return list(model._default_manager.db_manager(using).filter(pk__in=list(pks)).values(*names))


def rows_insert_orm(model: type[models.Model], rows: Sequence[dict], *, using: str) -> None:
    """Insert rows, each a dict holding every concrete field's attname."""
    model._default_manager.db_manager(using).bulk_create([model(**row) for row in rows])


def rows_update_orm(model: type[models.Model], rows: Sequence[dict], fields: Sequence[str], *, using: str) -> int:
    """Write `fields` (attnames) of existing rows, each a dict holding its primary key and those fields; primary
    keys distinct. Returns how many rows were found."""
    if not rows:
        return 0
    return model._default_manager.db_manager(using).bulk_update([model(**row) for row in rows], fields)


# --- Fast paths -----------------------------------------------------------------------------------------------


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
    return orjson.dumps(rows, default=_json_value, option=orjson.OPT_NON_STR_KEYS).decode()


def _fields(model: type[models.Model], attnames) -> list[models.Field]:
    by_attname = {f.attname: f for f in model._meta.concrete_fields}
    return [by_attname[name] for name in attnames]


def rows_by_pk(model: type[models.Model], pks: Iterable, *, using: str) -> list[dict]:
    """rows_by_pk_orm(), on PostgreSQL as one query whose keys travel as one JSON array (an IN list of thousands
    of parameters costs more to build than to run), read without Django's per-value converters."""
    pks = list(pks)
    if not pks:
        return []
    connection = connections[using]
    fields = model._meta.concrete_fields
    if connection.vendor != "postgresql" or any(hasattr(f, "from_db_value") for f in fields):
        return rows_by_pk_orm(model, pks, using=using)
    quote, pk = connection.ops.quote_name, model._meta.pk
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
    """rows_insert_orm(): one row as one INSERT, many on PostgreSQL from one JSON document."""
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
        rows_insert_orm(model, rows, using=using)


def rows_update(model: type[models.Model], rows: Sequence[dict], fields: Sequence[str], *, using: str) -> int:
    """rows_update_orm(): one row as one UPDATE, many on PostgreSQL joined to one JSON document."""
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
        return rows_update_orm(model, rows, fields, using=using)
    key = quote(pk.column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {', '.join(f'{quote(f.column)} = v.{quote(f.column)}' for f in columns)} "  # noqa: S608
            f"FROM json_populate_recordset(NULL::{table}, %s) AS v WHERE {table}.{key} = v.{key}",
            [_rows_json(model, rows)],
        )
        return cursor.rowcount
