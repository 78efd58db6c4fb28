"""Activities of the organization steps: thin entry points over organizations.services.

Each is safe to retry: the services check the provider and the projections before acting, and every event
carries an idempotency key made from the workflow id, the attempt and a stable step name.
Errors that retrying cannot fix are raised as non-retryable; timeouts, 429 and 5xx are left retryable.
"""

import functools
from collections.abc import Callable
from datetime import timedelta

from django.core.exceptions import ValidationError
from temporalio.exceptions import ApplicationError

from temporal_bridge.activities import django_activity, fail_for_good_on, step_key, step_metadata

from . import services
from .dns import DnsPermanentError, DnsTransientError
from .payloads import (
    ActivateOrganizationInput,
    ConfigureDnsInput,
    CreatedOrganization,
    CreateOrganizationInput,
    DnsDetails,
    DnsVerification,
    MarkFailedInput,
    OrganizationActivity,
    OrganizationScope,
    RecordInvitationsSentInput,
    RemoveDnsInput,
    VerifyDnsInput,
)


def _retry_after(fn: Callable) -> Callable:
    """A provider's Retry-After (Cloudflare's 429) becomes the next retry's delay."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except DnsTransientError as exc:
            delay = timedelta(seconds=exc.retry_after) if exc.retry_after else None
            raise ApplicationError(str(exc), type=type(exc).__name__, next_retry_delay=delay) from None

    return run


def _organization_activity(name: str) -> Callable[[Callable], Callable]:
    final = fail_for_good_on(ValidationError, DnsPermanentError, services.OrganizationAlreadyActive)
    return lambda fn: django_activity(name)(final(_retry_after(fn)))


def _meta(scope: OrganizationScope, organization_id: str, acting_user_id: int | None = None):
    return step_metadata(scope, correlation_id=organization_id, acting_user_id=acting_user_id)


@_organization_activity(OrganizationActivity.CREATE)
def create_organization(params: CreateOrganizationInput) -> CreatedOrganization:
    organization = services.organization_create(
        organization_id=params.organization_id,
        name=params.name,
        type=params.type,
        subdomain=params.subdomain,
        parent_id=params.parent_id,
        attempt=params.attempt,
        key=step_key(OrganizationScope.CREATE, params.attempt),
        metadata=_meta(OrganizationScope.CREATE, params.organization_id, params.requested_by_id),
    )
    return CreatedOrganization(organization_id=str(organization.pk), domain=organization.domain)


@_organization_activity(OrganizationActivity.CONFIGURE_DNS)
def configure_dns(params: ConfigureDnsInput) -> DnsDetails:
    return services.organization_dns_configure(
        organization_id=params.organization_id,
        subdomain=params.subdomain,
        key=step_key(OrganizationScope.CONFIGURE_DNS, params.attempt),
        metadata=_meta(OrganizationScope.CONFIGURE_DNS, params.organization_id),
    )


@_organization_activity(OrganizationActivity.VERIFY_DNS)
def verify_dns(params: VerifyDnsInput) -> DnsVerification:
    return services.organization_dns_verify(
        organization_id=params.organization_id,
        fqdn=params.fqdn,
        target=params.target,
        proxied=params.proxied,
        key=step_key(OrganizationScope.VERIFY_DNS, params.attempt),
        metadata=_meta(OrganizationScope.VERIFY_DNS, params.organization_id),
    )


@_organization_activity(OrganizationActivity.RECORD_INVITATIONS_SENT)
def record_invitations_sent(params: RecordInvitationsSentInput) -> None:
    services.organization_invitations_sent_record(
        organization_id=params.organization_id,
        counts=params.counts,
        key=step_key(OrganizationScope.INVITATIONS_SENT, params.attempt),
        metadata=_meta(OrganizationScope.INVITATIONS_SENT, params.organization_id),
    )


@_organization_activity(OrganizationActivity.ACTIVATE)
def activate_organization(params: ActivateOrganizationInput) -> None:
    services.organization_activate(
        organization_id=params.organization_id,
        key=step_key(OrganizationScope.ACTIVATE, params.attempt),
        metadata=_meta(OrganizationScope.ACTIVATE, params.organization_id),
    )


@_organization_activity(OrganizationActivity.REMOVE_DNS)
def remove_dns(params: RemoveDnsInput) -> None:
    services.organization_dns_remove(
        organization_id=params.organization_id,
        subdomain=params.subdomain,
        record_id=params.record_id,
        key=step_key(OrganizationScope.REMOVE_DNS, params.attempt),
        metadata=_meta(OrganizationScope.REMOVE_DNS, params.organization_id),
    )


@_organization_activity(OrganizationActivity.MARK_FAILED)
def mark_failed(params: MarkFailedInput) -> None:
    services.organization_mark_failed(
        organization_id=params.organization_id,
        step=params.step,
        message=params.message,
        compensation=params.compensation,
        key=step_key(OrganizationScope.MARK_FAILED, params.attempt),
        metadata=_meta(OrganizationScope.MARK_FAILED, params.organization_id),
    )


ACTIVITIES = [
    create_organization,
    configure_dns,
    verify_dns,
    record_invitations_sent,
    activate_organization,
    remove_dns,
    mark_failed,
]
