"""Reads: token checks for the acceptance pages, accounts by email, an organization's people."""

from dataclasses import dataclass
from enum import StrEnum

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Q, QuerySet
from django.utils import timezone

from .emails import canonical_email
from .models import Invitation, InvitationDelivery, InvitationStatus, InvitationToken, Membership
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


def _invitation_state(invitation: Invitation, token: InvitationToken) -> TokenState:
    if invitation.status in _CLOSED:
        return _CLOSED[invitation.status]
    if invitation.expires_at <= timezone.now():
        return TokenState.EXPIRED
    if token.issued_version < invitation.sent_token_version:
        return TokenState.SUPERSEDED
    return TokenState.VALID


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
    """The state behind a selector whose verifier was checked earlier in this session (see views)."""
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
