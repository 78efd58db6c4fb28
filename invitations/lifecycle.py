"""Each invitation's lifecycle workflow (UserInvitationWorkflow): starting and signalling it, and the steps it runs
(provision after an acceptance, the one reminder, the expiry)."""

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from eventstore.catalogue import EventType, StreamType
from eventstore.events import EventMetadata, NewEvent
from eventstore.selectors import events_for_keys
from eventstore.services import events_append
from temporal_bridge.client import TemporalUnavailable, temporal
from temporal_bridge.queues import TaskQueue
from temporal_bridge.registry import task_queue

from .deliveries import deliveries_enqueue_on_commit, delivery_id_for
from .exceptions import InvalidInvitationData
from .models import Invitation, InvitationDelivery
from .payloads import (
    INVITATION_WORKFLOW_TYPE,
    DeliveryKind,
    InvitationStatus,
    InvitationTimings,
    UserInvitationInput,
    invitation_workflow_id,
)
from .streams import invitation_append, retry_on_conflict

log = logging.getLogger(__name__)
# Lifecycle workflows started or signalled at once by one call.
CONCURRENT_STARTS = 64


def invitation_timings() -> InvitationTimings:
    return InvitationTimings(reminder_delay=settings.INVITATION_REMINDER_DELAY)


def role_granted_event(invitation: Invitation) -> NewEvent:
    """Granting the invited role: the same event (and key) from the acceptance and from the workflow."""
    return NewEvent(
        event_type=EventType.USER_ROLE_GRANTED,
        data={
            "organization_id": str(invitation.organization_id),
            "role": invitation.role,
            "invitation_id": str(invitation.pk),
        },
        idempotency_key=f"invitation/{invitation.pk}/role_granted",
    )


# --- Starting and signalling -----------------------------------------------------------------------------


def invitation_workflows_start_rollback_unsafe(invitation_ids: Sequence[str]) -> int:
    """Start the UserInvitationWorkflow of each invitation, concurrently; one already running (or done) is
    left alone, so this is safe to repeat. Returns how many are running now."""
    return lifecycle_send_rollback_unsafe([(str(pk), None, None) for pk in invitation_ids])


def lifecycle_send_rollback_unsafe(messages: Sequence[tuple[str, str | None, Any]]) -> int:
    """For each (invitation id, signal or None, payload): make sure the invitation's workflow runs, and deliver
    the signal if there is one. Returns how many were started or signalled (not: had ended).

    A run is started asleep (a start delay up to its first deadline, the reminder or the expiry): until then
    it would only wait, so it costs no workflow task and no place in a worker's cache. A plain signal does not
    wake such a run, so signals go as signal-with-start, which does (and starts a run that is missing).
    """
    rows = Invitation.objects.filter(pk__in=[pk for pk, _, _ in messages]).values_list(
        "pk", "organization_id", "expires_at"
    )
    timings, now = invitation_timings(), timezone.now()
    inputs = {
        str(pk): UserInvitationInput(
            invitation_id=str(pk), organization_id=str(org), expires_at=expires.isoformat(), timings=timings
        )
        for pk, org, expires in rows
    }
    if missing := {pk for pk, _, _ in messages} - inputs.keys():
        log.warning("No invitation %s; its workflow is not started or signalled", ", ".join(sorted(missing)))
    todo = [(inputs[pk], name, arg) for pk, name, arg in messages if pk in inputs]
    if not todo:
        return 0
    queue = task_queue(TaskQueue.USERS)
    remind_in = timedelta(seconds=timings.reminder_delay)

    def asleep_for(params: UserInvitationInput) -> timedelta | None:
        due = min(now + remind_in, datetime.fromisoformat(params.expires_at)) - now
        return due if due > timedelta(0) else None

    async def send_all(client: Client) -> int:
        gate = asyncio.Semaphore(CONCURRENT_STARTS)

        async def one(params: UserInvitationInput, name: str | None, arg: Any) -> bool:
            workflow_id = invitation_workflow_id(params.invitation_id)
            options: dict[str, Any] = (
                {"start_delay": asleep_for(params), "id_conflict_policy": WorkflowIDConflictPolicy.USE_EXISTING}
                if name is None
                else {"start_signal": name, "start_signal_args": [arg]}
            )
            async with gate:
                try:
                    await client.start_workflow(
                        INVITATION_WORKFLOW_TYPE,
                        params,
                        id=workflow_id,
                        task_queue=queue,
                        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                        **options,
                    )
                    return True
                except WorkflowAlreadyStartedError:  # it has ended: nothing to start, no one to tell
                    if name is not None:
                        log.info("Workflow %s has ended; signal %s dropped", workflow_id, name)
                    return False

        return sum(await asyncio.gather(*(one(*m) for m in todo)))

    return temporal.run(send_all, timeout=settings.TEMPORAL_CLIENT_TIMEOUT + len(todo) / 20)


def signal_many_rollback_unsafe(signals: Sequence[tuple[str, str, Any]]) -> int:
    """Send (invitation id, signal, payload) to the invitations' workflows concurrently. A workflow that has
    ended or a Temporal outage is logged, not raised: the workflow's own expiry check reconciles with the
    projection. Returns how many were delivered."""
    try:
        return lifecycle_send_rollback_unsafe(signals)
    except (TemporalUnavailable, RPCError) as exc:
        log.warning("Could not signal %d invitation workflow(s): %s", len(signals), exc)
        return 0


def signal_on_commit(invitation_id: str, name: str, arg: Any) -> None:
    transaction.on_commit(lambda: signal_many_rollback_unsafe([(str(invitation_id), name, arg)]))


# --- The lifecycle workflow's steps ----------------------------------------------------------------------


def invitation_provision(*, invitation_id: str, user_id: int, metadata: EventMetadata) -> Invitation:
    """The workflow's durable check after an acceptance: the account exists and holds the invited role.
    Re-appends the role grant under the key the acceptance used, which is a no-op when it is stored."""
    invitation = Invitation.objects.get(pk=invitation_id)
    if invitation.status != InvitationStatus.ACCEPTED or invitation.accepted_by_id != user_id:
        raise InvalidInvitationData(f"Invitation {invitation_id} was not accepted by user {user_id}.")
    if not get_user_model()._default_manager.filter(pk=user_id).exists():
        raise InvalidInvitationData(f"User {user_id} of invitation {invitation_id} does not exist.")
    events_append(
        stream_type=StreamType.USER, stream_id=user_id, events=[role_granted_event(invitation)], metadata=metadata
    )
    return invitation


def invitation_remind(*, invitation_id: str, scope: str, metadata: EventMetadata) -> bool:
    """Queue the one reminder email if the invitation is still pending. Safe to repeat with one `scope`."""

    def remind() -> bool:
        invitation = Invitation.objects.get(pk=invitation_id)
        if invitation.status != InvitationStatus.PENDING or invitation.expires_at <= timezone.now():
            return False
        delivery_id = delivery_id_for(f"{scope}/reminder")
        key = f"{scope}/reminded"
        if events_for_keys(keys=[key]):
            # A retry: the first run committed, but its publish after the commit may have failed. Publish again:
            # a task for a reminder already sent finds it done.
            deliveries_enqueue_on_commit([delivery_id])
            return True
        now = timezone.now()
        InvitationDelivery.objects.get_or_create(
            id=delivery_id,
            defaults={"invitation": invitation, "kind": DeliveryKind.REMINDER, "queued_at": now, "updated_at": now},
        )
        invitation_append(
            invitation,
            NewEvent(
                event_type=EventType.INVITATION_REMINDED, data={"delivery_id": str(delivery_id)}, idempotency_key=key
            ),
            metadata,
        )
        deliveries_enqueue_on_commit([delivery_id])
        return True

    return retry_on_conflict(remind)


def invitation_expire(*, invitation_id: str, key: str, metadata: EventMetadata) -> Invitation:
    """Record `invitation.expired` if it is pending and past its expiry; otherwise leave it as it is."""

    def expire() -> Invitation:
        invitation = Invitation.objects.get(pk=invitation_id)
        if invitation.status == InvitationStatus.PENDING and invitation.expires_at <= timezone.now():
            invitation_append(
                invitation, NewEvent(event_type=EventType.INVITATION_EXPIRED, data={}, idempotency_key=key), metadata
            )
            invitation.refresh_from_db()
        return invitation

    return retry_on_conflict(expire)
