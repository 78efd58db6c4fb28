"""Temporal activities for invitations: thin entry points over `invitations.services`.

On the "bootstrap" queue, called by the bootstrap workflow: generate, enqueue_emails, revoke_pending.
On the "users" queue, called by UserInvitationWorkflow: provision, remind, expire; and by the delivery sweep's
scheduled workflow: requeue_stale_deliveries.
"""

from datetime import timedelta

from django.conf import settings
from temporalio import activity

from temporal_bridge.activities import django_activity, fail_for_good_on, step_key, step_metadata

from . import selectors, services
from .payloads import (
    Activity,
    DeliverySweepResult,
    EnqueuedInvitationEmails,
    EnqueueInvitationEmailsInput,
    ExpireInput,
    ExpireResult,
    GeneratedInvitations,
    GenerateInvitationsInput,
    LifecycleActivity,
    Provisioned,
    ProvisionInput,
    Reminded,
    RemindInput,
    RevokedInvitations,
    RevokePendingInvitationsInput,
)

# Bad input cannot get better by retrying: such an activity fails for good, with a message safe to show.
_bad_data_is_final = fail_for_good_on(services.InvalidInvitationData)


@django_activity(Activity.GENERATE)
@_bad_data_is_final
def generate(params: GenerateInvitationsInput) -> GeneratedInvitations:
    ids = services.invitations_generate(
        organization_id=params.organization_id,
        invitees=params.invitees,
        key_prefix=step_key("generate_invitations", params.attempt),
        metadata=step_metadata(
            "generate_invitations", correlation_id=params.organization_id, acting_user_id=params.invited_by_id
        ),
        invited_by_id=params.invited_by_id,
        bootstrap_workflow_id=activity.info().workflow_id or "",
    )
    # Every invitation is committed by now, so its lifecycle workflow may start (already running ones are kept).
    services.invitation_workflows_start_rollback_unsafe(ids)
    return GeneratedInvitations(invitation_ids=ids)


@django_activity(Activity.ENQUEUE_EMAILS)
@_bad_data_is_final
def enqueue_emails(params: EnqueueInvitationEmailsInput) -> EnqueuedInvitationEmails:
    enqueued = services.invitation_emails_enqueue(
        organization_id=params.organization_id,
        invitation_ids=params.invitation_ids,
        notify_workflow_id=params.notify_workflow_id,
        notify_attempt=params.attempt,
        scope=step_key("send_invitation_emails", params.attempt),
    )
    return EnqueuedInvitationEmails(enqueued=enqueued)


@django_activity(Activity.REVOKE_PENDING)
@_bad_data_is_final
def revoke_pending(params: RevokePendingInvitationsInput) -> RevokedInvitations:
    revoked = services.invitations_revoke_pending(
        organization_id=params.organization_id,
        reason=params.reason,
        key_prefix=step_key("revoke_invitations", params.attempt),
        metadata=step_metadata("revoke_invitations", correlation_id=params.organization_id),
    )
    return RevokedInvitations(revoked=len(revoked), invitation_ids=revoked)


@django_activity(LifecycleActivity.PROVISION)
@_bad_data_is_final
def provision(params: ProvisionInput) -> Provisioned:
    invitation = services.invitation_provision(
        invitation_id=params.invitation_id,
        user_id=params.user_id,
        metadata=step_metadata("provision", acting_user_id=params.user_id),
    )
    return Provisioned(user_id=params.user_id, organization_id=str(invitation.organization_id), role=invitation.role)


@django_activity(LifecycleActivity.REMIND)
@_bad_data_is_final
def remind(params: RemindInput) -> Reminded:
    queued = services.invitation_remind(
        invitation_id=params.invitation_id, scope=step_key("remind"), metadata=step_metadata("remind")
    )
    invitation = selectors.invitation_get(params.invitation_id)
    return Reminded(queued=queued, status=invitation.status, accepted_by_id=invitation.accepted_by_id)


@django_activity(LifecycleActivity.EXPIRE)
@_bad_data_is_final
def expire(params: ExpireInput) -> ExpireResult:
    invitation = services.invitation_expire(
        invitation_id=params.invitation_id, key=step_key("expired"), metadata=step_metadata("expire")
    )
    return ExpireResult(
        status=invitation.status, expires_at=invitation.expires_at.isoformat(), accepted_by_id=invitation.accepted_by_id
    )


@django_activity(LifecycleActivity.REQUEUE_STALE_DELIVERIES)
def requeue_stale_deliveries() -> DeliverySweepResult:
    older_than = timedelta(seconds=settings.INVITATION_DELIVERY_STALE_AFTER)
    return DeliverySweepResult(republished=services.deliveries_requeue_stale(older_than=older_than))
