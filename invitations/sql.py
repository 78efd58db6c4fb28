"""Hand-written SQL for the two reads every invitee and every email task makes: the fast paths of
`selectors.invitation_page` and `selectors.outgoing_email`.

Compiling the ORM's four-table select_related costs more than running the query. Each function returns the
fields of the selector's dataclass, `inviter` None when no one invited; the ORM versions beside the selectors
are the reference, and tests hold the two equal.
"""

import uuid
from datetime import UTC, datetime

from django.contrib.auth import get_user_model
from django.db import connections
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from organizations.models import Organization

from .emails import canonical_email
from .models import Invitation, InvitationDelivery, InvitationToken


def invitation_page_fields(selector: str, *, using: str) -> dict | None:
    """InvitationPage's fields for this selector, or None if there is no such token."""
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(_statement(_page_sql, connection), [selector])
        rows = cursor.fetchall()
    if not rows:
        return None
    inv_id, version, status, expires_at, issued, sent, email, canonical, first, last, role, org_name = rows[0][:12]
    return {
        "selector": selector,
        "invitation_id": _uuid_str(inv_id),
        "version": version,
        "status": status,
        "expires_at": _aware(expires_at),
        "issued_version": issued,
        "sent_token_version": sent,
        "email": email,
        "email_canonical": canonical,
        "first_name": first,
        "last_name": last,
        "role": role,
        "organization_name": org_name,
        "inviter": _inviter(*rows[0][12:16]),
        "account_exists": any(
            candidate is not None and canonical_email(candidate) == canonical for *_, candidate in rows
        ),
    }


def outgoing_email_fields(delivery_id: str, *, using: str) -> dict | None:
    """OutgoingEmail's fields for this delivery, or None if there is no such delivery."""
    connection = connections[using]
    pk = InvitationDelivery._meta.pk.get_db_prep_value(delivery_id, connection)
    with connection.cursor() as cursor:
        cursor.execute(_statement(_outgoing_sql, connection), [pk])
        row = cursor.fetchone()
    if row is None:
        return None
    d_id, inv_id, org_id, kind, status, attempts, error, notify, claimed_until, inv_status, expires_at = row[:11]
    email, first, role, org_name = row[11:15]
    return {
        "id": _uuid_str(d_id),
        "invitation_id": _uuid_str(inv_id),
        "organization_id": _uuid_str(org_id),
        "kind": kind,
        "status": status,
        "attempts": attempts,
        "last_error": error,
        "notify_workflow_id": notify,
        "claimed_until": _aware(claimed_until) if claimed_until is not None else None,
        "invitation_status": inv_status,
        "expires_at": _aware(expires_at),
        "email": email,
        "first_name": first,
        "role": role,
        "organization_name": org_name,
        "inviter": _inviter(*row[15:19]),
        "reported_at": _aware(row[19]) if row[19] is not None else None,
    }


def _column_namer(connection):
    """col(meta, field name) -> the field's column, quoted for this connection: raw SQL that follows renames."""
    quote = connection.ops.quote_name
    return lambda meta, name: quote(meta.get_field(name).column)


def _page_sql(connection) -> str:
    """The token, its invitation, organization and inviter, and one row per account that may have the invited
    address (found case-insensitively, like `user_for_email`; the canonical comparison is done on the rows)."""
    User = get_user_model()
    token, inv, org, user = (m._meta for m in (InvitationToken, Invitation, Organization, User))
    q, col = connection.ops.quote_name, _column_namer(connection)

    return (
        f"SELECT i.{col(inv, 'id')}, i.{col(inv, 'version')}, i.{col(inv, 'status')}, i.{col(inv, 'expires_at')}, "  # noqa: S608
        f"t.{col(token, 'issued_version')}, i.{col(inv, 'sent_token_version')}, i.{col(inv, 'email')}, "
        f"i.{col(inv, 'email_canonical')}, i.{col(inv, 'first_name')}, i.{col(inv, 'last_name')}, "
        f"i.{col(inv, 'role')}, o.{col(org, 'name')}, u.{col(user, user.pk.name)}, u.{col(user, 'first_name')}, "
        f"u.{col(user, 'last_name')}, u.{col(user, User.USERNAME_FIELD)}, a.{col(user, 'email')} "
        f"FROM {q(token.db_table)} t "
        f"JOIN {q(inv.db_table)} i ON i.{col(inv, 'id')} = t.{col(token, 'invitation')} "
        f"JOIN {q(org.db_table)} o ON o.{col(org, 'id')} = i.{col(inv, 'organization')} "
        f"LEFT JOIN {q(user.db_table)} u ON u.{col(user, user.pk.name)} = i.{col(inv, 'invited_by')} "
        f"LEFT JOIN {q(user.db_table)} a ON a.{col(user, User.USERNAME_FIELD)} = i.{col(inv, 'email_canonical')} "
        f"OR UPPER(a.{col(user, 'email')}) = UPPER(i.{col(inv, 'email_canonical')}) "
        f"OR UPPER(a.{col(user, 'email')}) = UPPER(i.{col(inv, 'email')}) "
        f"WHERE t.{col(token, 'selector')} = %s"
    )


def _outgoing_sql(connection) -> str:
    User = get_user_model()
    delivery, inv, org, user = (m._meta for m in (InvitationDelivery, Invitation, Organization, User))
    q, col = connection.ops.quote_name, _column_namer(connection)

    return (
        f"SELECT d.{col(delivery, 'id')}, d.{col(delivery, 'invitation')}, i.{col(inv, 'organization')}, "  # noqa: S608
        f"d.{col(delivery, 'kind')}, d.{col(delivery, 'status')}, d.{col(delivery, 'attempts')}, "
        f"d.{col(delivery, 'last_error')}, d.{col(delivery, 'notify_workflow_id')}, "
        f"d.{col(delivery, 'claimed_until')}, i.{col(inv, 'status')}, i.{col(inv, 'expires_at')}, "
        f"i.{col(inv, 'email')}, i.{col(inv, 'first_name')}, i.{col(inv, 'role')}, o.{col(org, 'name')}, "
        f"u.{col(user, user.pk.name)}, u.{col(user, 'first_name')}, u.{col(user, 'last_name')}, "
        f"u.{col(user, User.USERNAME_FIELD)}, d.{col(delivery, 'reported_at')} "
        f"FROM {q(delivery.db_table)} d "
        f"JOIN {q(inv.db_table)} i ON i.{col(inv, 'id')} = d.{col(delivery, 'invitation')} "
        f"JOIN {q(org.db_table)} o ON o.{col(org, 'id')} = i.{col(inv, 'organization')} "
        f"LEFT JOIN {q(user.db_table)} u ON u.{col(user, user.pk.name)} = i.{col(inv, 'invited_by')} "
        f"WHERE d.{col(delivery, 'id')} = %s"
    )


# Statements built from the models' metadata, once per (builder, database vendor).
_SQL: dict[tuple[object, str], str] = {}


def _statement(build, connection) -> str:
    key = (build, connection.vendor)
    return _SQL.get(key) or _SQL.setdefault(key, build(connection))


def _uuid_str(value) -> str:
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(value))


def _inviter(user_id, first_name: str, last_name: str, username: str) -> str | None:
    """AbstractUser.get_full_name() or get_username(), from the columns."""
    if user_id is None:
        return None
    return f"{first_name} {last_name}".strip() or username


def _aware(value) -> datetime:
    if isinstance(value, str):  # SQLite without a declared-type converter
        value = parse_datetime(value)
    return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)
