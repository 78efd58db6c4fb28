"""Writes for invitations: generating them (a fan-out's step), inviting people to an active organization, and
support's resend and revoke (and the bootstrap's compensation, revoking every pending one).

Email deliveries live in `invitations.deliveries`, acceptance in `invitations.acceptance`, the lifecycle workflow's
starts and steps in `invitations.lifecycle`. Every state change is an event appended through
`eventstore.services.events_append`; the projections in `invitations.projections` turn them into rows in the same
transaction. Signals to workflows and Celery tasks go out only after the transaction commits.
"""

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from temporalio.service import RPCError

from eventstore.catalogue import EventType, StreamType
from eventstore.events import EventMetadata, NewEvent
from eventstore.selectors import events_for_keys
from eventstore.services import events_append
from organizations.models import Organization, OrganizationStatus
from temporal_bridge.client import TemporalUnavailable, start_workflow_rollback_unsafe
from temporal_bridge.queues import TaskQueue

from .deliveries import deliveries_enqueue_on_commit, invitation_emails_enqueue
from .emails import canonical_email
from .exceptions import AlreadyInvited, InvalidInvitationData, OrganizationNotActive
from .lifecycle import signal_many_rollback_unsafe, signal_on_commit
from .models import Invitation, InvitationDelivery, Membership
from .payloads import (
    DELIVERY_WORKFLOW_TYPE,
    RESENT_SIGNAL,
    REVOKED_SIGNAL,
    DeliveryKind,
    InvitationClosed,
    InvitationDeliveryInput,
    InvitationResent,
    InvitationScope,
    InvitationStatus,
    Invitee,
    invite_delivery_workflow_id,
)
from .streams import email_key, invitation_append, invitation_metadata, retry_on_conflict
from .validation import ValidInvitee, invitees_validate

log = logging.getLogger(__name__)

# Namespace of invitation ids derived from idempotency keys (uuid5), so a retried step finds its own rows again.
INVITATION_NAMESPACE = uuid.UUID("0b6f2a4e-5d1c-4f7e-a1c3-7e2d9b8c6a10")


def invitation_id_for(key: str) -> str:
    return str(uuid.uuid5(INVITATION_NAMESPACE, key))


# --- Generating invitations (the fan-out's first step) -----------------------------------------------------


def invitations_generate(
    *,
    organization_id: str,
    invitees: Sequence[Invitee],
    key_prefix: str,
    metadata: EventMetadata,
    invited_by_id: int | None = None,
    bootstrap_workflow_id: str = "",
) -> list[str]:
    """Create one pending invitation per invitee.

    Safe to repeat with the same `key_prefix`: an invitee whose `invitation.created` is stored under its
    key, or who already has a pending invitation to the organization, keeps that invitation. Returns the
    invitation ids in invitee order. Each invitation commits on its own (one stream each).
    """
    valid = invitees_validate(invitees, max_count=settings.BOOTSTRAP_MAX_INVITEES)
    if not Organization.objects.filter(pk=organization_id).exists():
        raise InvalidInvitationData(f"Organization {organization_id} does not exist.")
    keys = {v.canonical: f"{key_prefix}/{email_key(v.canonical)}" for v in valid}
    stored = events_for_keys(keys=keys.values())
    pending = dict(
        Invitation.objects.filter(
            organization_id=organization_id, status=InvitationStatus.PENDING, email_canonical__in=list(keys)
        ).values_list("email_canonical", "pk")
    )
    expires_at = (timezone.now() + timedelta(seconds=settings.INVITATION_TTL)).isoformat()
    ids: list[str] = []
    for invitee in valid:
        key = keys[invitee.canonical]
        if key in stored:
            ids.append(stored[key].stream_id)
            continue
        if invitee.canonical in pending:
            ids.append(str(pending[invitee.canonical]))
            continue
        invitation_id = invitation_id_for(key)
        data = {
            "organization_id": str(organization_id),
            "email": invitee.email,
            "email_canonical": invitee.canonical,
            "first_name": invitee.first_name,
            "last_name": invitee.last_name,
            "role": invitee.role,
            "expires_at": expires_at,
            "invited_by_id": invited_by_id,
            "bootstrap_workflow_id": bootstrap_workflow_id,
        }
        events_append(
            stream_type=StreamType.INVITATION,
            stream_id=invitation_id,
            events=[NewEvent(event_type=EventType.INVITATION_CREATED, data=data, idempotency_key=key)],
            expected_version=0,
            metadata=metadata,
            created_by_id=invited_by_id,
        )
        ids.append(invitation_id)
    return ids


# --- Inviting people to an active organization ---------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Invited:
    invitation_ids: list[str]
    # The delivery workflow that tracks the emails and starts each invitation's lifecycle workflow. False when
    # Temporal could not take it after the commit: the invitations and their emails stand, and each invitation's
    # workflow starts when the invitee accepts or declines (signal-with-start), or on a resend.
    lifecycle_started: bool
    workflow_id: str = ""


def organization_invite(
    *, organization_id: str, invitees: Sequence[Invitee], requested_by_id: int | None = None
) -> Invited:
    """Invite people to an active organization, outside any bootstrap: the invitations, their emails (through
    Celery, after commit) and the fan-out workflow that tracks those emails and starts each invitation's lifecycle
    workflow (reminder, expiry), as a bootstrap's invitees get them.

    All or nothing: bad input, an invitee who already has a pending invitation or already belongs to the
    organization, or an organization that is not active refuses the whole list, and nothing is written.
    """
    valid = invitees_validate(invitees, max_count=settings.BOOTSTRAP_MAX_INVITEES)
    cleaned = [v.invitee() for v in valid]
    request_id = str(uuid.uuid4())  # each request its own: inviting someone again later is a new invitation
    scope = f"{InvitationScope.INVITE}/{request_id}"
    workflow_id = invite_delivery_workflow_id(str(organization_id), request_id)
    metadata = EventMetadata(
        correlation_id=str(organization_id),
        causation_id=f"command:{request_id}",
        step=InvitationScope.INVITE,
        acting_user_id=requested_by_id,
    )
    with transaction.atomic():
        # Locked, so two invitations of the same address at once, or a deactivation meanwhile, wait their turn.
        organization = Organization.objects.select_for_update().filter(pk=organization_id).first()
        if organization is None:
            raise InvalidInvitationData(f"Organization {organization_id} does not exist.")
        if organization.status != OrganizationStatus.ACTIVE:
            raise OrganizationNotActive(
                f"{organization.name} is {organization.get_status_display().lower()}: only an active organization "
                "takes new invitations (a pending one invites its first users through its bootstrap)."
            )
        _refuse_already_invited(str(organization_id), valid)
        ids = invitations_generate(
            organization_id=str(organization_id),
            invitees=cleaned,
            key_prefix=f"{scope}/{InvitationScope.GENERATE}",
            metadata=metadata,
            invited_by_id=requested_by_id,
        )
        invitation_emails_enqueue(
            organization_id=str(organization_id),
            invitation_ids=ids,
            notify_workflow_id=workflow_id,
            scope=f"{scope}/{InvitationScope.SEND_EMAILS}",
        )
    params = InvitationDeliveryInput(
        organization_id=str(organization_id),
        invitees=cleaned,
        scope=scope,
        invited_by_id=requested_by_id,
        results_timeout=settings.BOOTSTRAP_EMAIL_RESULTS_TIMEOUT,
    )
    try:
        start_workflow_rollback_unsafe(DELIVERY_WORKFLOW_TYPE, params, id=workflow_id, queue=TaskQueue.USERS)
    except (TemporalUnavailable, RPCError) as exc:  # committed already: report it, do not fail the request
        log.warning("Invited %d to %s; their workflows start later (%s)", len(ids), organization_id, exc)
        return Invited(invitation_ids=ids, lifecycle_started=False, workflow_id=workflow_id)
    return Invited(invitation_ids=ids, lifecycle_started=True, workflow_id=workflow_id)


def _refuse_already_invited(organization_id: str, valid: Sequence[ValidInvitee]) -> None:
    pending = set(
        Invitation.objects.filter(
            organization_id=organization_id,
            status=InvitationStatus.PENDING,
            email_canonical__in=[v.canonical for v in valid],
        ).values_list("email_canonical", flat=True)
    )
    members = {
        canonical_email(email)
        for email in Membership.objects.filter(organization_id=organization_id).values_list("user__email", flat=True)
    }
    problems = {
        f"invitees.{n}.email": [
            f"{v.email!r} "
            + (
                "already has a pending invitation (resend it instead)."
                if v.canonical in pending
                else "is already a member."
            )
        ]
        for n, v in enumerate(valid)
        if v.canonical in pending or v.canonical in members
    }
    if problems:
        raise AlreadyInvited(problems)


# --- Support: resend and revoke ----------------------------------------------------------------------------


def invitation_resend(*, invitation_id: str, requested_by_id: int | None = None) -> InvitationDelivery | None:
    """Email a pending invitation again with a new token (the old link then says a newer invitation was
    sent) and a fresh expiry. Returns the delivery, or None if the invitation is not pending."""

    def resend() -> InvitationDelivery | None:
        invitation = Invitation.objects.get(pk=invitation_id)
        if invitation.status != InvitationStatus.PENDING:
            return None
        expires_at = (timezone.now() + timedelta(seconds=settings.INVITATION_TTL)).isoformat()
        invitation_append(
            invitation,
            NewEvent(
                event_type=EventType.INVITATION_RESENT,
                data={"expires_at": expires_at, "requested_by_id": requested_by_id},
            ),
            invitation_metadata(invitation, "resend", requested_by_id),
            by=requested_by_id,
        )
        now = timezone.now()
        delivery = InvitationDelivery.objects.create(
            id=uuid.uuid4(),
            invitation=invitation,
            kind=DeliveryKind.RESEND,
            requested_by_id=requested_by_id,
            queued_at=now,
            updated_at=now,
        )
        deliveries_enqueue_on_commit([delivery.pk])
        signal_on_commit(invitation.pk, RESENT_SIGNAL, InvitationResent(expires_at=expires_at))
        return delivery

    return retry_on_conflict(resend)


def invitation_revoke(
    *,
    invitation_id: str,
    reason: str,
    requested_by_id: int | None = None,
    metadata: EventMetadata | None = None,
    idempotency_key: str | None = None,
    signal: bool = True,
) -> bool:
    """Revoke a pending invitation and (after commit) end its workflow. False if it was not pending
    (already revoked, accepted...): revoking is idempotent."""

    def revoke() -> bool:
        invitation = Invitation.objects.get(pk=invitation_id)
        if invitation.status != InvitationStatus.PENDING:
            return False
        invitation_append(
            invitation,
            NewEvent(
                event_type=EventType.INVITATION_REVOKED,
                data={"reason": reason[:200], "requested_by_id": requested_by_id},
                idempotency_key=idempotency_key,
            ),
            metadata or invitation_metadata(invitation, "revoke", requested_by_id),
            by=requested_by_id,
        )
        if signal:
            signal_on_commit(invitation.pk, REVOKED_SIGNAL, InvitationClosed(reason=reason[:200]))
        return True

    return retry_on_conflict(revoke)


def invitations_revoke_pending(
    *, organization_id: str, reason: str, key_prefix: str, metadata: EventMetadata
) -> list[str]:
    """Revoke every pending invitation of an organization and take back the roles its accepted ones granted
    (the bootstrap's compensation: invitees may accept while it waits for the emails); idempotent.

    Each revocation commits on its own. Pending ones go first, so no acceptance can follow the roles' revoke.
    Then every revoked invitation's workflow is told, including those revoked by an earlier try of this step
    that may have stopped before signalling (repeats are harmless). Returns the invitations revoked by this
    call."""
    pending = Invitation.objects.filter(organization_id=organization_id, status=InvitationStatus.PENDING)
    revoked = [
        str(invitation_id)
        for invitation_id in pending.values_list("pk", flat=True)
        if invitation_revoke(
            invitation_id=invitation_id,
            reason=reason,
            requested_by_id=metadata.acting_user_id,
            metadata=metadata,
            idempotency_key=f"{key_prefix}/{invitation_id}",
            signal=False,
        )
    ]
    for membership in Membership.objects.filter(organization_id=organization_id):
        events_append(
            stream_type=StreamType.USER,
            stream_id=membership.user_id,
            events=[
                NewEvent(
                    event_type=EventType.USER_ROLE_REVOKED,
                    data={"organization_id": str(organization_id), "role": membership.role, "reason": reason[:200]},
                    idempotency_key=f"{key_prefix}/role/{membership.user_id}",
                )
            ],
            metadata=metadata,
        )
    # This step's revocations, from any try of it (by their keys): not those of an earlier bootstrap attempt,
    # whose workflows ended long ago (past Temporal's retention, signal-with-start would start them again).
    all_revoked = Invitation.objects.filter(organization_id=organization_id, status=InvitationStatus.REVOKED)
    keys = [f"{key_prefix}/{pk}" for pk in all_revoked.values_list("pk", flat=True)]
    by_this_step = [event.stream_id for event in events_for_keys(keys=keys).values()]
    closed = InvitationClosed(reason=reason[:200])
    signal_many_rollback_unsafe([(str(pk), REVOKED_SIGNAL, closed) for pk in by_this_step])
    return revoked
