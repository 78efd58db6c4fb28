"""Reads: token checks for the acceptance pages, accounts by email, an organization's people."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from . import sql
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


NO_INVITER = "The A4C onboarding team"


def _inviter_name(user) -> str:
    """Who invited, as the pages and emails name them."""
    return NO_INVITER if user is None else user.get_full_name() or user.get_username()


def _with_inviter(found: dict) -> dict:
    return {**found, "inviter": NO_INVITER} if found["inviter"] is None else found


def invitation_page(selector: str, *, using: str = DEFAULT_DB_ALIAS) -> InvitationPage | None:
    """The landing page's view of the invitation behind a selector whose verifier was checked earlier, or
    None if there is no such token. Read by every invitee (and every mail scanner): through `sql`."""
    if not selector:
        return None
    found = sql.invitation_page_fields(selector, using=using)
    return None if found is None else InvitationPage(**_with_inviter(found))


def invitation_page_orm(selector: str, *, using: str = DEFAULT_DB_ALIAS) -> InvitationPage | None:
    """invitation_page() through the ORM: the reference its SQL is tested against."""
    token = _token_row(selector, using) if selector else None
    if token is None:
        return None
    inv = token.invitation
    User = get_user_model()
    candidates = User._default_manager.db_manager(using).filter(
        Q(**{User.USERNAME_FIELD: inv.email_canonical})
        | Q(email__iexact=inv.email_canonical)
        | Q(email__iexact=inv.email)
    )
    return InvitationPage(
        selector=selector,
        invitation_id=str(inv.pk),
        version=inv.version,
        status=inv.status,
        expires_at=inv.expires_at,
        issued_version=token.issued_version,
        sent_token_version=inv.sent_token_version,
        email=inv.email,
        email_canonical=inv.email_canonical,
        first_name=inv.first_name,
        last_name=inv.last_name,
        role=inv.role,
        organization_name=inv.organization.name,
        inviter=_inviter_name(inv.invited_by),
        account_exists=any(canonical_email(u.email) == inv.email_canonical for u in candidates if u.email is not None),
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


def outgoing_email(delivery_id: str, *, using: str = DEFAULT_DB_ALIAS) -> OutgoingEmail | None:
    """The delivery and its email's content, or None if there is no such delivery. Every email task reads it:
    through `sql`, like `invitation_page`."""
    found = sql.outgoing_email_fields(delivery_id, using=using)
    return None if found is None else OutgoingEmail(**_with_inviter(found))


def outgoing_email_orm(delivery_id: str, *, using: str = DEFAULT_DB_ALIAS) -> OutgoingEmail | None:
    """outgoing_email() through the ORM: the reference its SQL is tested against."""
    delivery = (
        InvitationDelivery.objects.using(using)
        .select_related("invitation__organization", "invitation__invited_by")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None:
        return None
    inv = delivery.invitation
    return OutgoingEmail(
        id=str(delivery.pk),
        invitation_id=str(inv.pk),
        organization_id=str(inv.organization_id),
        kind=delivery.kind,
        status=delivery.status,
        attempts=delivery.attempts,
        last_error=delivery.last_error,
        notify_workflow_id=delivery.notify_workflow_id,
        claimed_until=delivery.claimed_until,
        invitation_status=inv.status,
        expires_at=inv.expires_at,
        email=inv.email,
        first_name=inv.first_name,
        role=inv.role,
        organization_name=inv.organization.name,
        inviter=_inviter_name(inv.invited_by),
        reported_at=delivery.reported_at,
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


def _counts(queryset, field: str, values: list[str]) -> dict[str, int]:
    found = dict(queryset.values_list(field).annotate(n=Count("pk")).order_by())
    return {value: found.get(value, 0) for value in values}


def invitation_counts(*, using: str = DEFAULT_DB_ALIAS) -> dict[str, int]:
    """Invitations per status, every status listed (0 where there are none)."""
    return _counts(Invitation.objects.using(using), "status", [s.value for s in InvitationStatus])


def delivery_counts(*, using: str = DEFAULT_DB_ALIAS) -> dict[str, int]:
    """Invitation email deliveries per status: queued, sending and retrying ones are still under way."""
    return _counts(InvitationDelivery.objects.using(using), "status", [s.value for s in DeliveryStatus])
