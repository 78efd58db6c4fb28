"""Payloads of the organization bootstrap workflow.

Standard library (and other payload modules) only: the workflow sandbox imports this. One kw_only input dataclass
per workflow, with defaults on every field added later, so running workflows keep decoding.
"""

from dataclasses import dataclass, field
from enum import StrEnum

from invitations.payloads import Invitee
from organizations.payloads import DnsDetails, InvitationCounts

WORKFLOW_TYPE = "OrganizationBootstrapWorkflow"
STATE_QUERY = "state"
RECHECK_DNS_SIGNAL = "recheck_dns"


def bootstrap_workflow_id(organization_id: str) -> str:
    return f"org-bootstrap-{organization_id}"


class Step(StrEnum):
    CREATE_ORGANIZATION = "create_organization"
    CONFIGURE_DNS = "configure_dns"
    WAIT_FOR_DNS = "wait_for_dns_propagation"
    VERIFY_DNS = "verify_dns"
    SEND_INVITATIONS = "send_invitation_emails"
    ACTIVATE = "activate_organization"


class CompensationStep(StrEnum):
    REMOVE_DNS = "remove_dns"
    REVOKE_INVITATIONS = "revoke_invitations"
    MARK_FAILED = "mark_failed"


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    COMPENSATED = "compensated"


class BootstrapStatus(StrEnum):
    RUNNING = "running"
    COMPENSATING = "compensating"
    ACTIVE = "active"
    FAILED = "failed"


@dataclass(kw_only=True)
class BootstrapTimings:
    """Durations (seconds) and limits. Set from settings when the workflow starts, so tests can shorten
    them and a running workflow keeps the values it started with."""

    dns_propagation_wait: float = 300.0
    dns_configure_max_attempts: int = 3
    dns_verify_timeout: float = 2100.0
    retry_initial_interval: float = 10.0
    retry_max_interval: float = 300.0
    activity_timeout: float = 600.0
    email_results_timeout: float = 3600.0
    activity_retry_initial_interval: float = 1.0
    activity_max_attempts: int = 10
    compensation_step_timeout: float = 900.0


@dataclass(kw_only=True)
class BootstrapInput:
    organization_id: str
    name: str
    type: str
    subdomain: str
    invitees: list[Invitee]
    parent_id: str | None = None
    requested_by_id: int | None = None
    attempt: int = 1
    timings: BootstrapTimings = field(default_factory=BootstrapTimings)


@dataclass(kw_only=True)
class StepState:
    name: str
    status: str = StepStatus.PENDING
    attempts: int = 0
    started_at: str | None = None
    finished_at: str | None = None
    error: str = ""


@dataclass(kw_only=True)
class BootstrapState:
    organization_id: str
    attempt: int
    status: BootstrapStatus
    current_step: str
    steps: list[StepState]
    compensation: list[StepState] = field(default_factory=list)
    dns: DnsDetails = field(default_factory=DnsDetails)
    invitations: InvitationCounts = field(default_factory=InvitationCounts)
    # The email fan-out's child workflow, whose own state query has the live counts while it runs.
    invitations_workflow_id: str = ""
    errors: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class BootstrapResult:
    organization_id: str
    domain: str
    invitations: InvitationCounts
