"""Payloads crossing the Temporal boundary for invitations, and the enums they share with the models.

Standard library only: workflow code imports it. Every dataclass is kw_only, so a field added later (with a
default) can never shift the arguments of a caller.
"""

from dataclasses import dataclass, field
from enum import StrEnum

# The counts of a fan-out are what the organization records of its invitations (organization.invitations_sent).
from organizations.payloads import InvitationCounts


class Role(StrEnum):
    ORGANIZATION_ADMIN = "organization_admin"
    CLINICIAN = "clinician"
    STAFF = "staff"


class InvitationStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    REVOKED = "revoked"
    EXPIRED = "expired"


class DeliveryKind(StrEnum):
    INVITATION = "invitation"
    REMINDER = "reminder"
    RESEND = "resend"


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    RETRYING = "retrying"
    SENT = "sent"
    FAILED = "failed"


FINAL_DELIVERY_STATUSES = (DeliveryStatus.SENT, DeliveryStatus.FAILED)


class InvitationActivity(StrEnum):
    GENERATE = "invitations.generate"
    ENQUEUE_EMAILS = "invitations.enqueue_emails"
    REVOKE_PENDING = "invitations.revoke_pending"
    PROVISION = "invitations.provision"
    REMIND = "invitations.remind"
    EXPIRE = "invitations.expire"
    REQUEUE_STALE_DELIVERIES = "invitations.requeue_stale_deliveries"


class InvitationScope(StrEnum):
    """Step names inside idempotency keys and delivery ids: stored with events and rows, so a value must never
    change once a run has used it."""

    GENERATE = "generate_invitations"
    SEND_EMAILS = "send_invitation_emails"
    REVOKE = "revoke_invitations"
    REMIND = "remind"
    EXPIRE = "expired"
    PROVISION = "provision"
    INVITE = "invite"


@dataclass(kw_only=True)
class Invitee:
    email: str
    first_name: str = ""
    last_name: str = ""
    role: str = Role.ORGANIZATION_ADMIN


# --- The email fan-out (InvitationDeliveryWorkflow, on the users queue) -----------------------------------

DELIVERY_WORKFLOW_TYPE = "InvitationDeliveryWorkflow"
# Signal each Celery email task sends to the delivery workflow that enqueued it, once its outcome is recorded.
DELIVERY_SIGNAL = "invitation_delivery"
DELIVERY_STATE_QUERY = "state"


def bootstrap_delivery_workflow_id(organization_id: str, attempt: int) -> str:
    return f"invitations-{organization_id}-bootstrap-{attempt}"


def invite_delivery_workflow_id(organization_id: str, request_id: str) -> str:
    return f"invitations-{organization_id}-invite-{request_id}"


@dataclass(kw_only=True)
class InvitationDeliveryInput:
    organization_id: str
    invitees: list[Invitee]
    # Idempotency scope of the invitations and their deliveries: a retried step finds its own rows again.
    scope: str
    invited_by_id: int | None = None
    results_timeout: float = 3600.0
    activity_timeout: float = 60.0
    activity_retry_initial_interval: float = 1.0
    activity_max_attempts: int = 10


@dataclass(kw_only=True)
class InvitationDeliveryResult:
    invitation_ids: list[str]
    counts: InvitationCounts
    # Of counts.failed_invitation_ids, those whose email never reported back before the results timeout.
    unreported_invitation_ids: list[str] = field(default_factory=list)
    signals: int = 0  # delivery signals received, repeats included


@dataclass(kw_only=True)
class DeliveryReport:
    invitation_id: str
    status: DeliveryStatus
    attempts: int = 1
    error: str = ""


@dataclass(kw_only=True)
class GenerateInvitationsInput:
    organization_id: str
    invitees: list[Invitee]
    scope: str
    invited_by_id: int | None = None
    # The workflow that asked for the invitations (a bootstrap), for the admin's links.
    bootstrap_workflow_id: str = ""


@dataclass(kw_only=True)
class GeneratedInvitations:
    invitation_ids: list[str]


@dataclass(kw_only=True)
class EnqueueInvitationEmailsInput:
    organization_id: str
    invitation_ids: list[str]
    scope: str


@dataclass(kw_only=True)
class EnqueuedInvitationEmails:
    enqueued: int
    # Deliveries already final when this step ran (their report may have gone out before this workflow existed).
    settled: list[DeliveryReport] = field(default_factory=list)


@dataclass(kw_only=True)
class RevokePendingInvitationsInput:
    organization_id: str
    reason: str
    attempt: int = 1


@dataclass(kw_only=True)
class RevokedInvitations:
    revoked: int
    invitation_ids: list[str] = field(default_factory=list)


# --- The invitation lifecycle workflow (one per invitation, on the users queue) ---------------------------

INVITATION_WORKFLOW_TYPE = "UserInvitationWorkflow"
ACCEPTED_SIGNAL = "accepted"
DECLINED_SIGNAL = "declined"
REVOKED_SIGNAL = "revoked"
RESENT_SIGNAL = "resent"
INVITATION_STATE_QUERY = "state"


def invitation_workflow_id(invitation_id: str) -> str:
    return f"invitation-{invitation_id}"


DELIVERY_SWEEP_WORKFLOW_TYPE = "InvitationDeliverySweepWorkflow"
DELIVERY_SWEEP_SCHEDULE_ID = "invitation-delivery-sweep"


@dataclass(kw_only=True)
class DeliverySweepInput:
    pass


@dataclass(kw_only=True)
class DeliverySweepResult:
    republished: int


@dataclass(kw_only=True)
class InvitationTimings:
    """Seconds. Taken from settings when the workflow starts, so tests can shorten them and a running
    workflow keeps the values it started with."""

    reminder_delay: float = 3 * 24 * 3600.0
    activity_timeout: float = 60.0
    retry_initial_interval: float = 1.0
    retry_max_interval: float = 300.0


@dataclass(kw_only=True)
class UserInvitationInput:
    invitation_id: str
    organization_id: str
    # ISO 8601 with offset; the projection holds the same instant.
    expires_at: str
    timings: InvitationTimings = field(default_factory=InvitationTimings)


@dataclass(kw_only=True)
class InvitationAccepted:
    user_id: int


@dataclass(kw_only=True)
class InvitationClosed:
    """Payload of the declined and revoked signals."""

    reason: str = ""


@dataclass(kw_only=True)
class InvitationResent:
    expires_at: str


@dataclass(kw_only=True)
class ProvisionInput:
    invitation_id: str
    user_id: int


@dataclass(kw_only=True)
class Provisioned:
    user_id: int
    organization_id: str
    role: str


@dataclass(kw_only=True)
class RemindInput:
    invitation_id: str


@dataclass(kw_only=True)
class Reminded:
    queued: bool
    status: InvitationStatus
    accepted_by_id: int | None = None


@dataclass(kw_only=True)
class ExpireInput:
    invitation_id: str


@dataclass(kw_only=True)
class ExpireResult:
    """The invitation's status after the check; `pending` with a later `expires_at` when a resend moved
    the deadline and its signal has not arrived yet."""

    status: InvitationStatus
    expires_at: str = ""
    accepted_by_id: int | None = None


@dataclass(kw_only=True)
class InvitationState:
    invitation_id: str
    status: InvitationStatus
    expires_at: str
    reminded: bool = False
    user_id: int | None = None


@dataclass(kw_only=True)
class InvitationOutcome:
    invitation_id: str
    status: InvitationStatus
    user_id: int | None = None
