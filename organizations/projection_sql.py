"""The organization projection's writes as SQL statements that run inside an append's own statement.

The fast path of `eventstore.postgres`: each statement writes what `OrganizationProjection.apply` writes for one
event, and the event-store contract tests compare the two (a rebuild through apply() equals the live table).
`appended` is the append's insert of the events; the row's version is the event's stream version from there.
"""

from django.db import connections

from eventstore.projections import AppendStatement

from .models import Organization

_PK = Organization._meta.pk
_BY_ATTNAME = {f.attname: f for f in Organization._meta.concrete_fields}
_SQL: dict[tuple, str] = {}


def created(row: dict, *, using: str) -> AppendStatement:
    """Insert a top-level organization's row (every field but the version)."""
    connection = connections[using]
    return AppendStatement(_sql(connection, "insert", tuple(row), with_parent=False), _values(connection, row))


def child_created(row: dict, parent_id: str, path_segment: str, *, using: str) -> AppendStatement:
    """Insert a child's row (every field but the version, path and depth, which come from the parent's row)."""
    connection = connections[using]
    params = [*_values(connection, row), path_segment, _PK.get_db_prep_save(parent_id, connection)]
    return AppendStatement(_sql(connection, "insert", tuple(row), with_parent=True), params)


def changed(organization_id: str, changes: dict, *, using: str) -> AppendStatement:
    """Update these fields of the organization's row, and its version."""
    connection = connections[using]
    params = [*_values(connection, changes), _PK.get_db_prep_save(organization_id, connection)]
    return AppendStatement(_sql(connection, "update", tuple(changes), with_parent=False), params)


def _values(connection, row: dict) -> list:
    return [_BY_ATTNAME[name].get_db_prep_save(value, connection) for name, value in row.items()]


def _sql(connection, kind: str, attnames: tuple[str, ...], *, with_parent: bool) -> str:
    """The statement for these fields, built once per shape."""
    key = (connection.vendor, kind, attnames, with_parent)
    if (sql := _SQL.get(key)) is not None:
        return sql
    quote = connection.ops.quote_name
    table = quote(Organization._meta.db_table)
    columns = [quote(_BY_ATTNAME[name].column) for name in attnames]
    version = quote(_BY_ATTNAME["version"].column)
    if kind == "insert":
        path, depth = quote(_BY_ATTNAME["path"].column), quote(_BY_ATTNAME["depth"].column)
        targets, values = [*columns, version], [*(["%s"] * len(columns)), "a.stream_version"]
        source = "appended a"
        if with_parent:
            targets += [path, depth]
            values += [f"p.{path} || %s", f"p.{depth} + 1"]
            source += f" JOIN {table} p ON p.{quote(_PK.column)} = %s"
        sql = f"INSERT INTO {table} ({', '.join(targets)}) SELECT {', '.join(values)} FROM {source} RETURNING 1"  # noqa: S608
    else:
        assignments = ", ".join([*(f"{column} = %s" for column in columns), f"{version} = a.stream_version"])
        sql = (
            f"UPDATE {table} SET {assignments} FROM appended a "  # noqa: S608
            f"WHERE {table}.{quote(_PK.column)} = %s RETURNING 1"
        )
    return _SQL.setdefault(key, sql)
