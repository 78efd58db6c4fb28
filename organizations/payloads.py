"""Payloads of the organization bootstrap workflow and its activities.

Standard library (and other payload modules) only: the workflow sandbox imports this. One input dataclass
per workflow and per activity, with defaults on every field added later, so running workflows keep decoding.
"""

from dataclasses import dataclass, field
from enum import StrEnum

from invitations.payloads import Invitee

BOOTSTRAP_QUEUE = "bootstrap"
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
    GENERATE_INVITATIONS = "generate_invitations"
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


class Activity(StrEnum):
    CREATE_ORGANIZATION = "bootstrap.create_organization"
    CONFIGURE_DNS = "bootstrap.configure_dns"
    VERIFY_DNS = "bootstrap.verify_dns"
    RECORD_INVITATIONS_SENT = "bootstrap.record_invitations_sent"
    ACTIVATE = "bootstrap.activate_organization"
    REMOVE_DNS = "bootstrap.remove_dns"
    MARK_FAILED = "bootstrap.mark_failed"


@dataclass
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


@dataclass
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


@dataclass
class StepState:
    name: str
    status: str = StepStatus.PENDING
    attempts: int = 0
    started_at: str | None = None
    finished_at: str | None = None
    error: str = ""


@dataclass
class DnsDetails:
    provider: str = ""
    record_id: str = ""
    fqdn: str = ""
    target: str = ""
    record_type: str = ""
    proxied: bool = False
    verified_by: list[str] = field(default_factory=list)
    last_check: str = ""


@dataclass
class InvitationCounts:
    total: int = 0
    sent: int = 0
    failed: int = 0
    pending: int = 0
    failed_invitation_ids: list[str] = field(default_factory=list)


@dataclass
class BootstrapState:
    organization_id: str
    attempt: int
    status: str  # running | compensating | active | failed
    current_step: str
    steps: list[StepState]
    compensation: list[StepState] = field(default_factory=list)
    dns: DnsDetails = field(default_factory=DnsDetails)
    invitations: InvitationCounts = field(default_factory=InvitationCounts)
    errors: list[str] = field(default_factory=list)


@dataclass
class BootstrapResult:
    organization_id: str
    domain: str
    invitations: InvitationCounts


# --- Activity inputs and results --------------------------------------------------------------------------


@dataclass
class CreateOrganizationInput:
    organization_id: str
    name: str
    type: str
    subdomain: str
    parent_id: str | None = None
    requested_by_id: int | None = None
    attempt: int = 1


@dataclass
class CreatedOrganization:
    organization_id: str
    domain: str


@dataclass
class ConfigureDnsInput:
    organization_id: str
    subdomain: str
    attempt: int = 1


@dataclass
class VerifyDnsInput:
    organization_id: str
    fqdn: str
    target: str
    proxied: bool = False
    attempt: int = 1


@dataclass
class DnsVerification:
    verified: bool
    verified_by: list[str]
    detail: str = ""


@dataclass
class RecordInvitationsSentInput:
    organization_id: str
    counts: InvitationCounts
    attempt: int = 1


@dataclass
class ActivateOrganizationInput:
    organization_id: str
    attempt: int = 1


@dataclass
class RemoveDnsInput:
    organization_id: str
    subdomain: str
    record_id: str = ""
    attempt: int = 1


@dataclass
class MarkFailedInput:
    organization_id: str
    step: str
    message: str
    compensation: list[StepState] = field(default_factory=list)
    attempt: int = 1
