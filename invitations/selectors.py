"""Reads: token checks for the acceptance pages, accounts by email, an organization's people."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from organizations.models import Organization

from .emails import canonical_email
from .models import (
    ROLE_CHOICES,
    DeliveryStatus,
    Invitation,
    InvitationDelivery,
    InvitationStatus,
    InvitationToken,
    Membership,
)
from .tokens import token_split, verifier_matches


class TokenState(StrEnum):
    VALID = "valid"
    UNKNOWN = "unknown"
    SUPERSEDED = "superseded"
    EXPIRED = "expired"
    REVOKED = "revoked"
    ACCEPTED = "accepted"
    DECLINED = "declined"


_CLOSED = {
    InvitationStatus.ACCEPTED: TokenState.ACCEPTED,
    InvitationStatus.DECLINED: TokenState.DECLINED,
    InvitationStatus.REVOKED: TokenState.REVOKED,
    InvitationStatus.EXPIRED: TokenState.EXPIRED,
}


@dataclass(frozen=True)
class TokenCheck:
    state: TokenState
    invitation: Invitation | None = None
    selector: str = ""

    @property
    def valid(self) -> bool:
        return self.state == TokenState.VALID


def _state(status: str, expires_at: datetime, issued_version: int, sent_token_version: int) -> TokenState:
    if status in _CLOSED:
        return _CLOSED[status]
    if expires_at <= timezone.now():
        return TokenState.EXPIRED
    if issued_version < sent_token_version:
        return TokenState.SUPERSEDED
    return TokenState.VALID


def _invitation_state(invitation: Invitation, token: InvitationToken) -> TokenState:
    return _state(invitation.status, invitation.expires_at, token.issued_version, invitation.sent_token_version)


def _token_row(selector: str, using: str) -> InvitationToken | None:
    return (
        InvitationToken.objects.using(using)
        .select_related("invitation__organization", "invitation__invited_by")
        .filter(selector=selector)
        .first()
    )


def token_check(token: str, *, using: str = DEFAULT_DB_ALIAS) -> TokenCheck:
    """What a presented token (`selector.verifier`) opens. Anything but a matching verifier is UNKNOWN,
    so a guess learns nothing about which invitations exist or what state they are in."""
    parts = token_split(token)
    if parts is None:
        return TokenCheck(TokenState.UNKNOWN)
    selector, verifier = parts
    row = _token_row(selector, using)
    if row is None or not verifier_matches(verifier, row.verifier_hash):
        return TokenCheck(TokenState.UNKNOWN)
    return TokenCheck(_invitation_state(row.invitation, row), row.invitation, selector)


def selector_check(selector: str, *, using: str = DEFAULT_DB_ALIAS) -> TokenCheck:
    """The state behind a selector whose verifier was checked earlier (kept in the invitation cookie, see views)."""
    row = _token_row(selector, using) if selector else None
    if row is None:
        return TokenCheck(TokenState.UNKNOWN)
    return TokenCheck(_invitation_state(row.invitation, row), row.invitation, selector)


def user_for_email(email: str, *, using: str = DEFAULT_DB_ALIAS) -> AbstractBaseUser | None:
    """The account whose email has this canonical form, if exactly one has.

    The database cannot apply NFKC, so candidates are found case-insensitively (and by the username new
    invitees get) and then compared in canonical form here."""
    canonical = canonical_email(email)
    User = get_user_model()
    candidates = User._default_manager.db_manager(using).filter(
        Q(username=canonical) | Q(email__iexact=canonical) | Q(email__iexact=email.strip())
    )
    matches = {u.pk: u for u in candidates if canonical_email(u.email or "") == canonical}
    if len(matches) > 1:
        raise LookupError("More than one account has this email address.")
    return next(iter(matches.values()), None)


_ROLE_NAMES = dict(ROLE_CHOICES)


@dataclass(frozen=True)
class InvitationPage:
    """What the landing page shows for a selector, as one read (`invitation_page`): plain values, so a copy
    can be kept between requests. The state is computed when asked, so expiry is exact even for an old copy."""

    selector: str
    invitation_id: str
    version: int
    status: str
    expires_at: datetime
    issued_version: int
    sent_token_version: int
    email: str
    email_canonical: str
    first_name: str
    last_name: str
    role: str
    organization_name: str
    inviter: str
    # An account has the invited address (canonical form): its owner must log in to accept.
    account_exists: bool

    @property
    def state(self) -> TokenState:
        return _state(self.status, self.expires_at, self.issued_version, self.sent_token_version)

    @property
    def role_display(self) -> str:
        return _ROLE_NAMES.get(self.role, self.role)


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


# Statements built from the models' metadata, once per (builder, database vendor).
_SQL: dict[tuple[object, str], str] = {}


def _statement(build, connection) -> str:
    key = (build, connection.vendor)
    return _SQL.get(key) or _SQL.setdefault(key, build(connection))


def _uuid_str(value) -> str:
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(value))


def _inviter(user_id, first_name: str, last_name: str, username: str) -> str:
    """Who invited, as the pages and emails name them: AbstractUser.get_full_name() or get_username()."""
    if user_id is None:
        return "The A4C onboarding team"
    return f"{first_name} {last_name}".strip() or username


def _aware(value) -> datetime:
    if isinstance(value, str):  # SQLite without a declared-type converter
        value = parse_datetime(value)
    return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)


def invitation_page(selector: str, *, using: str = DEFAULT_DB_ALIAS) -> InvitationPage | None:
    """The landing page's view of the invitation behind a selector whose verifier was checked earlier, or
    None if there is no such token.

    Raw SQL because compiling the ORM's four-table select_related costs more than running the query, and the
    page is opened by every invitee (and every mail scanner)."""
    if not selector:
        return None
    connection = connections[using]
    sql = _statement(_page_sql, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, [selector])
        rows = cursor.fetchall()
    if not rows:
        return None
    inv_id, version, status, expires_at, issued, sent, email, canonical, first, last, role, org_name = rows[0][:12]
    return InvitationPage(
        selector=selector,
        invitation_id=_uuid_str(inv_id),
        version=version,
        status=status,
        expires_at=_aware(expires_at),
        issued_version=issued,
        sent_token_version=sent,
        email=email,
        email_canonical=canonical,
        first_name=first,
        last_name=last,
        role=role,
        organization_name=org_name,
        inviter=_inviter(*rows[0][12:16]),
        account_exists=any(candidate is not None and canonical_email(candidate) == canonical for *_, candidate in rows),
    )


@dataclass(frozen=True)
class OutgoingEmail:
    """A delivery row with what its email says (invitation, organization, inviter): what the email task needs,
    as one read (`outgoing_email`)."""

    id: str
    invitation_id: str
    organization_id: str
    kind: str
    status: str
    attempts: int
    last_error: str
    notify_workflow_id: str
    claimed_until: datetime | None
    invitation_status: str
    expires_at: datetime
    email: str
    first_name: str
    role: str
    organization_name: str
    inviter: str
    reported_at: datetime | None = None  # when the waiting workflow was told the outcome

    @property
    def role_display(self) -> str:
        return _ROLE_NAMES.get(self.role, self.role)


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


def outgoing_email(delivery_id: str, *, using: str = DEFAULT_DB_ALIAS) -> OutgoingEmail | None:
    """The delivery and its email's content, or None if there is no such delivery. Raw SQL, like
    `invitation_page`: every email task reads it, and compiling the ORM's joins costs more than the query."""
    connection = connections[using]
    sql = _statement(_outgoing_sql, connection)
    pk = InvitationDelivery._meta.pk.get_db_prep_value(delivery_id, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, [pk])
        row = cursor.fetchone()
    if row is None:
        return None
    d_id, inv_id, org_id, kind, status, attempts, error, notify, claimed_until, inv_status, expires_at = row[:11]
    email, first, role, org_name = row[11:15]
    return OutgoingEmail(
        id=_uuid_str(d_id),
        invitation_id=_uuid_str(inv_id),
        organization_id=_uuid_str(org_id),
        kind=kind,
        status=status,
        attempts=attempts,
        last_error=error,
        notify_workflow_id=notify,
        claimed_until=_aware(claimed_until) if claimed_until is not None else None,
        invitation_status=inv_status,
        expires_at=_aware(expires_at),
        email=email,
        first_name=first,
        role=role,
        organization_name=org_name,
        inviter=_inviter(*row[15:19]),
        reported_at=_aware(row[19]) if row[19] is not None else None,
    )


def invitation_get(invitation_id, *, using: str = DEFAULT_DB_ALIAS) -> Invitation:
    return Invitation.objects.using(using).select_related("organization").get(pk=invitation_id)


# --- For the organization admin page --------------------------------------------------------------------


def organization_members(organization_id, *, using: str = DEFAULT_DB_ALIAS) -> QuerySet[Membership]:
    """The organization's members with their user and role, by email."""
    return (
        Membership.objects.using(using)
        .filter(organization_id=organization_id)
        .select_related("user")
        .order_by("user__email", "user_id")
    )


def organization_invitations(
    organization_id, *, statuses: list[str] | None = None, using: str = DEFAULT_DB_ALIAS
) -> QuerySet[Invitation]:
    """The organization's invitations, newest first, optionally only some statuses."""
    qs = Invitation.objects.using(using).filter(organization_id=organization_id)
    if statuses:
        qs = qs.filter(status__in=statuses)
    return qs.order_by("-created_at", "email_canonical")


def invitation_deliveries(invitation_id, *, using: str = DEFAULT_DB_ALIAS) -> QuerySet[InvitationDelivery]:
    return InvitationDelivery.objects.using(using).filter(invitation_id=invitation_id).order_by("queued_at")


def _counts(queryset, field: str, values: list[str]) -> dict[str, int]:
    found = dict(queryset.values_list(field).annotate(n=Count("pk")).order_by())
    return {value: found.get(value, 0) for value in values}


def invitation_counts(*, using: str = DEFAULT_DB_ALIAS) -> dict[str, int]:
    """Invitations per status, every status listed (0 where there are none)."""
    return _counts(Invitation.objects.using(using), "status", [s.value for s in InvitationStatus])


def delivery_counts(*, using: str = DEFAULT_DB_ALIAS) -> dict[str, int]:
    """Invitation email deliveries per status: queued, sending and retrying ones are still under way."""
    return _counts(InvitationDelivery.objects.using(using), "status", [s.value for s in DeliveryStatus])
