"""The invitation projection's hand-written SQL: its write inside an append's own statement, and the live path's
one-event `invitation.email_sent` as one UPDATE.

Fast paths of `InvitationProjection.apply`'s batch path, which writes the same rows; the rebuild tests replay the
events through that path and compare the tables with the live ones.
"""

from django.db import connections

from eventstore.events import RecordedEvent
from eventstore.projections import AppendStatement

from .models import Invitation, InvitationToken

# Every column of a new invitation but its version, in the order of the statement's placeholders.
_CREATED_FIELDS = [f for f in Invitation._meta.concrete_fields if f.attname != "version"]
_SQL: dict[tuple[str, str], str] = {}


def created(invitation: Invitation, *, using: str) -> AppendStatement:
    """Insert the new invitation's row; `appended` (the append's insert of the event) gives its version."""
    connection = connections[using]
    params = [f.get_db_prep_save(getattr(invitation, f.attname), connection) for f in _CREATED_FIELDS]
    return AppendStatement(_statement(_created_sql, connection), params)


def email_sent(event: RecordedEvent, email_status: str, *, using: str) -> int:
    """Record one `invitation.email_sent` on its invitation's row; returns the rows written (0: no such row)."""
    connection = connections[using]
    at = Invitation._meta.get_field("updated_at").get_db_prep_save(event.created_at, connection)
    pk = Invitation._meta.pk.get_db_prep_save(event.stream_id, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            _statement(_email_sent_sql, connection),
            [email_status, at, event.data["selector"], event.stream_version, at, pk],
        )
        return cursor.rowcount


def _statement(build, connection) -> str:
    key = (build.__name__, connection.vendor)
    return _SQL.get(key) or _SQL.setdefault(key, build(connection))


def _created_sql(connection) -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in _CREATED_FIELDS)
    values = ", ".join(["%s"] * len(_CREATED_FIELDS))
    version = quote(Invitation._meta.get_field("version").column)
    return (
        f"INSERT INTO {quote(Invitation._meta.db_table)} ({columns}, {version}) "  # noqa: S608  names only
        f"SELECT {values}, a.stream_version FROM appended a RETURNING 1"
    )


def _email_sent_sql(connection) -> str:
    quote = connection.ops.quote_name
    inv, token = Invitation._meta, InvitationToken._meta

    def col(meta, name: str) -> str:
        return quote(meta.get_field(name).column)

    greatest = "GREATEST" if connection.vendor == "postgresql" else "MAX"
    return (
        f"UPDATE {quote(inv.db_table)} SET {col(inv, 'email_status')} = %s, "  # noqa: S608
        f"{col(inv, 'emails_sent')} = {col(inv, 'emails_sent')} + 1, {col(inv, 'last_email_error')} = '', "
        f"{col(inv, 'last_emailed_at')} = %s, {col(inv, 'sent_token_version')} = {greatest}("
        f"{col(inv, 'sent_token_version')}, COALESCE((SELECT {col(token, 'issued_version')} "
        f"FROM {quote(token.db_table)} WHERE {col(token, 'selector')} = %s), 0)), "
        f"{col(inv, 'version')} = %s, {col(inv, 'updated_at')} = %s WHERE {col(inv, 'id')} = %s"
    )
