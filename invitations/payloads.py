"""Payloads crossing the Temporal boundary for invitations. Standard library only: workflow code imports it."""

from dataclasses import dataclass, field
from enum import StrEnum

USERS_QUEUE = "users"
# Signal a Celery email task sends to the workflow waiting for its result.
DELIVERY_SIGNAL = "invitation_delivery"


class Role(StrEnum):
    ORGANIZATION_ADMIN = "organization_admin"
    CLINICIAN = "clinician"
    STAFF = "staff"


class Activity(StrEnum):
    GENERATE = "invitations.generate"
    ENQUEUE_EMAILS = "invitations.enqueue_emails"
    REVOKE_PENDING = "invitations.revoke_pending"


@dataclass
class Invitee:
    email: str
    first_name: str = ""
    last_name: str = ""
    role: str = Role.ORGANIZATION_ADMIN


@dataclass
class GenerateInvitationsInput:
    organization_id: str
    invitees: list[Invitee]
    invited_by_id: int | None = None
    # Bootstrap attempt: a retried bootstrap generates afresh instead of replaying the failed one's events.
    attempt: int = 1


@dataclass
class GeneratedInvitations:
    invitation_ids: list[str]


@dataclass
class EnqueueInvitationEmailsInput:
    organization_id: str
    invitation_ids: list[str]
    # Where each email task reports its outcome (signal DELIVERY_SIGNAL with a DeliveryReport).
    notify_workflow_id: str
    attempt: int = 1


@dataclass
class EnqueuedInvitationEmails:
    enqueued: int


class DeliveryStatus(StrEnum):
    SENT = "sent"
    FAILED = "failed"


@dataclass
class DeliveryReport:
    invitation_id: str
    status: str
    attempts: int = 1
    error: str = ""
    bootstrap_attempt: int = 0  # the bootstrap attempt whose email this was; 0 if unknown (reports before it)


@dataclass
class RevokePendingInvitationsInput:
    organization_id: str
    reason: str
    attempt: int = 1


@dataclass
class RevokedInvitations:
    revoked: int
    invitation_ids: list[str] = field(default_factory=list)


# --- The invitation lifecycle workflow (one per invitation, on USERS_QUEUE) -------------------------------

INVITATION_WORKFLOW_TYPE = "UserInvitationWorkflow"
ACCEPTED_SIGNAL = "accepted"
DECLINED_SIGNAL = "declined"
REVOKED_SIGNAL = "revoked"
RESENT_SIGNAL = "resent"
INVITATION_STATE_QUERY = "state"


def invitation_workflow_id(invitation_id: str) -> str:
    return f"invitation-{invitation_id}"


class LifecycleActivity(StrEnum):
    PROVISION = "invitations.provision"
    REMIND = "invitations.remind"
    EXPIRE = "invitations.expire"
    REQUEUE_STALE_DELIVERIES = "invitations.requeue_stale_deliveries"


DELIVERY_SWEEP_WORKFLOW_TYPE = "InvitationDeliverySweepWorkflow"
DELIVERY_SWEEP_SCHEDULE_ID = "invitation-delivery-sweep"


@dataclass
class DeliverySweepResult:
    republished: int


@dataclass
class InvitationTimings:
    """Seconds. Taken from settings when the workflow starts, so tests can shorten them and a running
    workflow keeps the values it started with."""

    reminder_delay: float = 3 * 24 * 3600.0
    activity_timeout: float = 60.0
    retry_initial_interval: float = 1.0
    retry_max_interval: float = 300.0


@dataclass
class UserInvitationInput:
    invitation_id: str
    organization_id: str
    # ISO 8601 with offset; the projection holds the same instant.
    expires_at: str
    timings: InvitationTimings = field(default_factory=InvitationTimings)


@dataclass
class InvitationAccepted:
    user_id: int


@dataclass
class InvitationClosed:
    """Payload of the declined and revoked signals."""

    reason: str = ""


@dataclass
class InvitationResent:
    expires_at: str


@dataclass
class ProvisionInput:
    invitation_id: str
    user_id: int


@dataclass
class Provisioned:
    user_id: int
    organization_id: str
    role: str


@dataclass
class RemindInput:
    invitation_id: str


@dataclass
class Reminded:
    queued: bool
    status: str
    accepted_by_id: int | None = None


@dataclass
class ExpireInput:
    invitation_id: str


@dataclass
class ExpireResult:
    """The invitation's status after the check; `pending` with a later `expires_at` when a resend moved
    the deadline and its signal has not arrived yet."""

    status: str
    expires_at: str = ""
    accepted_by_id: int | None = None


@dataclass
class InvitationState:
    invitation_id: str
    status: str
    expires_at: str
    reminded: bool = False
    user_id: int | None = None


@dataclass
class InvitationOutcome:
    invitation_id: str
    status: str
    user_id: int | None = None
