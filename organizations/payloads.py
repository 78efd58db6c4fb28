"""Payloads of the organization activities (create, DNS, activate, compensation), shared with the workflows that
call them by name.

Standard library only: the workflow sandbox imports this. One kw_only input dataclass per activity, so fields can
be added with defaults without shifting any argument.
"""

from dataclasses import dataclass, field
from enum import StrEnum


class OrganizationActivity(StrEnum):
    CREATE = "organizations.create"
    CONFIGURE_DNS = "organizations.configure_dns"
    VERIFY_DNS = "organizations.verify_dns"
    RECORD_INVITATIONS_SENT = "organizations.record_invitations_sent"
    ACTIVATE = "organizations.activate"
    REMOVE_DNS = "organizations.remove_dns"
    MARK_FAILED = "organizations.mark_failed"


class OrganizationScope(StrEnum):
    """Step names inside idempotency keys (`<workflow id>/<attempt>/<scope>`): stored with every event, so a value
    must never change once a run has used it."""

    CREATE = "create_organization"
    CONFIGURE_DNS = "configure_dns"
    VERIFY_DNS = "verify_dns"
    INVITATIONS_SENT = "send_invitation_emails"
    ACTIVATE = "activate_organization"
    REMOVE_DNS = "remove_dns"
    MARK_FAILED = "mark_failed"


@dataclass(kw_only=True)
class CreateOrganizationInput:
    organization_id: str
    name: str
    type: str
    subdomain: str
    parent_id: str | None = None
    requested_by_id: int | None = None
    attempt: int = 1


@dataclass(kw_only=True)
class CreatedOrganization:
    organization_id: str
    domain: str


@dataclass(kw_only=True)
class ConfigureDnsInput:
    organization_id: str
    subdomain: str
    attempt: int = 1


@dataclass(kw_only=True)
class DnsDetails:
    provider: str = ""
    record_id: str = ""
    fqdn: str = ""
    target: str = ""
    record_type: str = ""
    proxied: bool = False
    verified_by: list[str] = field(default_factory=list)
    last_check: str = ""


@dataclass(kw_only=True)
class VerifyDnsInput:
    organization_id: str
    fqdn: str
    target: str
    proxied: bool = False
    attempt: int = 1


@dataclass(kw_only=True)
class DnsVerification:
    verified: bool
    verified_by: list[str]
    detail: str = ""


@dataclass(kw_only=True)
class InvitationCounts:
    total: int = 0
    sent: int = 0
    failed: int = 0
    pending: int = 0
    failed_invitation_ids: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class RecordInvitationsSentInput:
    organization_id: str
    counts: InvitationCounts
    attempt: int = 1


@dataclass(kw_only=True)
class ActivateOrganizationInput:
    organization_id: str
    attempt: int = 1


@dataclass(kw_only=True)
class RemoveDnsInput:
    organization_id: str
    subdomain: str
    record_id: str = ""
    attempt: int = 1


@dataclass(kw_only=True)
class CompensationOutcome:
    step: str
    status: str
    error: str = ""


@dataclass(kw_only=True)
class MarkFailedInput:
    organization_id: str
    step: str
    message: str
    compensation: list[CompensationOutcome] = field(default_factory=list)
    attempt: int = 1
