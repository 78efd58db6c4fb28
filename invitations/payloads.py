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


@dataclass
class RevokePendingInvitationsInput:
    organization_id: str
    reason: str
    attempt: int = 1


@dataclass
class RevokedInvitations:
    revoked: int
    invitation_ids: list[str] = field(default_factory=list)
