"""Temporal activities for invitations: thin entry points over the invitation services, all on the users queue
(the bootstrap also runs revoke_pending, as its compensation).

Called by InvitationDeliveryWorkflow: generate, enqueue_emails; by UserInvitationWorkflow: provision, remind,
expire; by the delivery sweep's scheduled workflow: requeue_stale_deliveries.
"""

from datetime import timedelta

from django.conf import settings
from temporalio import activity

from temporal_bridge.activities import django_activity, fail_for_good_on, step_key, step_metadata

from . import deliveries, lifecycle, selectors, services
from .exceptions import InvalidInvitationData
from .payloads import (
    DeliverySweepInput,
    DeliverySweepResult,
    EnqueuedInvitationEmails,
    EnqueueInvitationEmailsInput,
    ExpireInput,
    ExpireResult,
    GeneratedInvitations,
    GenerateInvitationsInput,
    InvitationActivity,
    InvitationScope,
    Provisioned,
    ProvisionInput,
    Reminded,
    RemindInput,
    RevokedInvitations,
    RevokePendingInvitationsInput,
)

# Bad input cannot get better by retrying: such an activity fails for good, with a message safe to show.
_bad_data_is_final = fail_for_good_on(InvalidInvitationData)


@django_activity(InvitationActivity.GENERATE)
@_bad_data_is_final
def generate(params: GenerateInvitationsInput) -> GeneratedInvitations:
    ids = services.invitations_generate(
        organization_id=params.organization_id,
        invitees=params.invitees,
        key_prefix=f"{params.scope}/{InvitationScope.GENERATE}",
        metadata=step_metadata(
            InvitationScope.GENERATE, correlation_id=params.organization_id, acting_user_id=params.invited_by_id
        ),
        invited_by_id=params.invited_by_id,
        bootstrap_workflow_id=params.bootstrap_workflow_id,
    )
    # Every invitation is committed by now, so its lifecycle workflow may start (already running ones are kept).
    lifecycle.invitation_workflows_start_rollback_unsafe(ids)
    return GeneratedInvitations(invitation_ids=ids)


@django_activity(InvitationActivity.ENQUEUE_EMAILS)
@_bad_data_is_final
def enqueue_emails(params: EnqueueInvitationEmailsInput) -> EnqueuedInvitationEmails:
    enqueued, settled = deliveries.invitation_emails_enqueue(
        organization_id=params.organization_id,
        invitation_ids=params.invitation_ids,
        notify_workflow_id=activity.info().workflow_id or "",
        scope=f"{params.scope}/{InvitationScope.SEND_EMAILS}",
    )
    return EnqueuedInvitationEmails(enqueued=enqueued, settled=settled)


@django_activity(InvitationActivity.REVOKE_PENDING)
@_bad_data_is_final
def revoke_pending(params: RevokePendingInvitationsInput) -> RevokedInvitations:
    revoked = services.invitations_revoke_pending(
        organization_id=params.organization_id,
        reason=params.reason,
        key_prefix=step_key(InvitationScope.REVOKE, params.attempt),
        metadata=step_metadata(InvitationScope.REVOKE, correlation_id=params.organization_id),
    )
    return RevokedInvitations(revoked=len(revoked), invitation_ids=revoked)


@django_activity(InvitationActivity.PROVISION)
@_bad_data_is_final
def provision(params: ProvisionInput) -> Provisioned:
    invitation = lifecycle.invitation_provision(
        invitation_id=params.invitation_id,
        user_id=params.user_id,
        metadata=step_metadata(InvitationScope.PROVISION, acting_user_id=params.user_id),
    )
    return Provisioned(user_id=params.user_id, organization_id=str(invitation.organization_id), role=invitation.role)


@django_activity(InvitationActivity.REMIND)
@_bad_data_is_final
def remind(params: RemindInput) -> Reminded:
    queued = lifecycle.invitation_remind(
        invitation_id=params.invitation_id,
        scope=step_key(InvitationScope.REMIND),
        metadata=step_metadata(InvitationScope.REMIND),
    )
    invitation = selectors.invitation_get(params.invitation_id)
    return Reminded(queued=queued, status=invitation.status, accepted_by_id=invitation.accepted_by_id)


@django_activity(InvitationActivity.EXPIRE)
@_bad_data_is_final
def expire(params: ExpireInput) -> ExpireResult:
    invitation = lifecycle.invitation_expire(
        invitation_id=params.invitation_id,
        key=step_key(InvitationScope.EXPIRE),
        metadata=step_metadata(InvitationScope.EXPIRE),
    )
    return ExpireResult(
        status=invitation.status, expires_at=invitation.expires_at.isoformat(), accepted_by_id=invitation.accepted_by_id
    )


@django_activity(InvitationActivity.REQUEUE_STALE_DELIVERIES)
def requeue_stale_deliveries(params: DeliverySweepInput) -> DeliverySweepResult:
    older_than = timedelta(seconds=settings.INVITATION_DELIVERY_STALE_AFTER)
    return DeliverySweepResult(republished=deliveries.deliveries_requeue_stale(older_than=older_than))


ACTIVITIES = [generate, enqueue_emails, revoke_pending, provision, remind, expire, requeue_stale_deliveries]
