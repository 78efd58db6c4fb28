"""Accepting and declining an invitation (the acceptance pages).

Acceptance is one transaction: the account (with Django's password machinery), its role and the acceptance are
recorded together or not at all; the invitation's workflow hears of it after commit.
"""

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser

from eventstore.catalogue import EventType, StreamType
from eventstore.events import NewEvent
from eventstore.services import events_append

from .emails import canonical_email
from .exceptions import AccountExists, AccountMismatch, InvalidInvitationData, InvitationUnavailable
from .lifecycle import role_granted_event, signal_on_commit
from .models import Invitation
from .payloads import ACCEPTED_SIGNAL, DECLINED_SIGNAL, InvitationAccepted, InvitationClosed
from .selectors import selector_check, user_for_email
from .streams import invitation_append, invitation_metadata, retry_on_conflict


@dataclass(frozen=True)
class Acceptance:
    invitation: Invitation
    user: AbstractBaseUser
    created_user: bool


def _username_for(canonical: str) -> str:
    User = get_user_model()
    username = canonical[:150]
    if User._default_manager.filter(username=username).exists():
        username = f"{canonical[:140]}-{secrets.token_hex(4)}"
    return username


def _valid_invitation(selector: str) -> Invitation:
    check = selector_check(selector)
    if not check.valid:
        raise InvitationUnavailable(check.state)
    return check.invitation


def invitation_accept(
    *,
    selector: str,
    user: AbstractBaseUser | None = None,
    first_name: str = "",
    last_name: str = "",
    password: str | None = None,
) -> Acceptance:
    """Accept an invitation: as the logged-in `user` (whose email must be the invited one), or as a new
    account created with `password` (hashed by Django's password machinery). One transaction: the account,
    its role and the acceptance are recorded together or not at all. The workflow hears of it after commit."""

    def accept() -> Acceptance:
        invitation = _valid_invitation(selector)
        metadata = invitation_metadata(invitation, "accept", user.pk if user else None)
        if user is not None:
            if canonical_email(user.email or "") != invitation.email_canonical:
                raise AccountMismatch("This invitation was sent to another email address.")
            account, created = user, False
        else:
            if user_for_email(invitation.email) is not None:
                raise AccountExists("An account with this email address exists: log in to accept.")
            if not password:
                raise InvalidInvitationData("Choose a password.")
            account = get_user_model()._default_manager.create_user(
                username=_username_for(invitation.email_canonical),
                email=invitation.email,
                password=password,
                first_name=first_name.strip()[:150],
                last_name=last_name.strip()[:150],
            )
            created = True
            events_append(
                stream_type=StreamType.USER,
                stream_id=account.pk,
                events=[
                    NewEvent(
                        event_type=EventType.USER_CREATED,
                        data={
                            "email": invitation.email,
                            "email_canonical": invitation.email_canonical,
                            "first_name": account.first_name,
                            "last_name": account.last_name,
                            "invitation_id": str(invitation.pk),
                        },
                        idempotency_key=f"invitation/{invitation.pk}/user_created",
                    )
                ],
                expected_version=0,
                metadata=metadata,
                created_by_id=account.pk,
            )
        events_append(
            stream_type=StreamType.USER,
            stream_id=account.pk,
            events=[role_granted_event(invitation)],
            metadata=metadata,
            created_by_id=account.pk,
        )
        invitation_append(
            invitation,
            NewEvent(
                event_type=EventType.INVITATION_ACCEPTED,
                data={"user_id": account.pk, "new_user": created},
                idempotency_key=f"invitation/{invitation.pk}/accepted",
            ),
            metadata,
            by=account.pk,
        )
        signal_on_commit(invitation.pk, ACCEPTED_SIGNAL, InvitationAccepted(user_id=account.pk))
        invitation.refresh_from_db()
        return Acceptance(invitation, account, created)

    return retry_on_conflict(accept)


def invitation_decline(*, selector: str, reason: str = "") -> Invitation:
    def decline() -> Invitation:
        invitation = _valid_invitation(selector)
        invitation_append(
            invitation,
            NewEvent(event_type=EventType.INVITATION_DECLINED, data={"reason": reason[:200]}),
            invitation_metadata(invitation, "decline"),
        )
        signal_on_commit(invitation.pk, DECLINED_SIGNAL, InvitationClosed(reason=reason[:200]))
        invitation.refresh_from_db()
        return invitation

    return retry_on_conflict(decline)
