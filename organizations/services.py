"""Writes of organization state: the steps the organization workflows run through their activities.

Every write of organization state is an event. Each step checks the provider and the projection before acting and
appends under an idempotency key made from the workflow id, the attempt and a stable step name, so an activity
retry or a restarted worker finds its own event instead of writing a second one.
"""

from dataclasses import asdict

from django.conf import settings
from django.db import IntegrityError

from eventstore.catalogue import EventType, StreamType
from eventstore.events import EventMetadata, NewEvent
from eventstore.exceptions import IdempotencyConflictError, ProjectionError
from eventstore.selectors import events_for_keys
from eventstore.services import events_append

from .dns import DnsRecord, get_provider
from .dns.verify import verify_from_settings
from .models import DnsStatus, Organization, OrganizationStatus
from .payloads import CompensationOutcome, DnsDetails, DnsVerification, InvitationCounts
from .validation import SubdomainTaken, check_subdomain_available, validate_subdomain


class OrganizationAlreadyActive(RuntimeError):
    """The organization is past the state the step expects (active, deactivated): retrying cannot change that."""


def _append(organization_id: str, event_type: str, data: dict, *, key: str, metadata: EventMetadata):
    return events_append(
        stream_type=StreamType.ORGANIZATION,
        stream_id=organization_id,
        events=[NewEvent(event_type=event_type, data=data, idempotency_key=key)],
        metadata=metadata,
        created_by_id=metadata.acting_user_id,
    )


def _append_step(
    organization_id: str, event_type: str, data: dict, *, key: str, metadata: EventMetadata, also: tuple[str, ...] = ()
):
    """_append for a workflow step whose re-run may compute a different payload (another resolver answered, the
    record was already removed): when this step's event is already stored under its key, on this organization,
    the step was done, and the stored event is returned instead of an idempotency conflict."""
    try:
        (event,) = _append(organization_id, event_type, data, key=key, metadata=metadata)
    except IdempotencyConflictError:
        stored = events_for_keys(keys=[key]).get(key)
        if stored is None or stored.stream_id != organization_id or stored.event_type not in (event_type, *also):
            raise
        return stored
    return event


def organization_create(
    *,
    organization_id: str,
    name: str,
    type: str,
    subdomain: str,
    parent_id: str | None,
    attempt: int,
    key: str,
    metadata: EventMetadata,
) -> Organization:
    """Record `organization.created` (or, for a retried bootstrap, `organization.bootstrap_restarted`).

    Check-then-act against the projection, and an idempotency key per step and attempt: an activity retry
    finds its own event instead of writing a second one.
    """
    existing = Organization.objects.filter(pk=organization_id).first()
    if existing is not None and attempt > existing.bootstrap_attempt:
        # Pending: the previous run was ended in Temporal before it could compensate (the retry checked that).
        if existing.status not in (OrganizationStatus.FAILED, OrganizationStatus.PENDING):
            raise OrganizationAlreadyActive(f"Organization {organization_id} is {existing.status}; nothing to retry.")
        check_subdomain_available(existing.subdomain, exclude_id=organization_id)
        event_type, data = EventType.ORGANIZATION_BOOTSTRAP_RESTARTED, {"attempt": attempt}
    else:
        validate_subdomain(subdomain)
        if existing is None:
            check_subdomain_available(subdomain)
        event_type = EventType.ORGANIZATION_CREATED
        data = {
            "name": name,
            "type": type,
            "subdomain": subdomain,
            "domain": f"{subdomain}.{settings.DNS_BASE_DOMAIN}",
            "parent_id": parent_id,
            "attempt": attempt,
        }
    try:
        # A retry of a restarted bootstrap's step finds bootstrap_restarted under its key.
        restarted = (EventType.ORGANIZATION_BOOTSTRAP_RESTARTED,)
        _append_step(organization_id, event_type, data, key=key, metadata=metadata, also=restarted)
    except ProjectionError as exc:
        # Two bootstraps raced for one subdomain: the partial unique index decides.
        if isinstance(exc.__cause__, IntegrityError):
            raise SubdomainTaken(f"“{subdomain}” is already used by an organization (taken a moment ago).") from exc
        raise
    return Organization.objects.get(pk=organization_id)


def _dns_details(record: DnsRecord) -> DnsDetails:
    return DnsDetails(
        provider=record.provider,
        record_id=record.record_id,
        fqdn=record.fqdn,
        target=record.target,
        record_type=record.record_type,
        proxied=record.proxied,
    )


def organization_dns_configure(
    *, organization_id: str, subdomain: str, key: str, metadata: EventMetadata
) -> DnsDetails:
    record = get_provider().ensure_record(subdomain)
    details = _dns_details(record)
    data = {
        k: v
        for k, v in asdict(details).items()
        if k in ("provider", "record_id", "fqdn", "target", "record_type", "proxied")
    }
    _append(organization_id, EventType.ORGANIZATION_DNS_CONFIGURED, data, key=key, metadata=metadata)
    return details


def organization_dns_verify(
    *, organization_id: str, fqdn: str, target: str, proxied: bool, key: str, metadata: EventMetadata
) -> DnsVerification:
    provider = get_provider()
    record = DnsRecord(
        provider=provider.name, record_id="", fqdn=fqdn, record_type="CNAME", target=target, proxied=proxied
    )
    result = verify_from_settings(record)
    if not result.verified:
        return DnsVerification(verified=False, verified_by=list(result.agreeing), detail=result.summary)
    event = _append_step(
        organization_id,
        EventType.ORGANIZATION_DNS_VERIFIED,
        {"fqdn": fqdn, "verified_by": list(result.agreeing), "quorum": result.quorum},
        key=key,
        metadata=metadata,
    )
    return DnsVerification(verified=True, verified_by=list(event.data["verified_by"]), detail=result.summary)


def organization_invitations_sent_record(
    *, organization_id: str, counts: InvitationCounts, key: str, metadata: EventMetadata
) -> None:
    _append(organization_id, EventType.ORGANIZATION_INVITATIONS_SENT, asdict(counts), key=key, metadata=metadata)


def organization_activate(*, organization_id: str, key: str, metadata: EventMetadata) -> None:
    organization = Organization.objects.get(pk=organization_id)
    if organization.status == OrganizationStatus.ACTIVE:
        return
    if organization.status != OrganizationStatus.PENDING:
        raise OrganizationAlreadyActive(f"Organization {organization_id} is {organization.status}, not pending.")
    _append(organization_id, EventType.ORGANIZATION_ACTIVATED, {}, key=key, metadata=metadata)


def organization_dns_remove(
    *, organization_id: str, subdomain: str, record_id: str, key: str, metadata: EventMetadata
) -> bool:
    """Compensation: delete the record if there is one (idempotent) and record the removal."""
    removed = get_provider().remove_record(subdomain, record_id)
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is not None and (removed or organization.dns_status != DnsStatus.NOT_CONFIGURED):
        event = _append_step(
            organization_id,
            EventType.ORGANIZATION_DNS_REMOVED,
            {"subdomain": subdomain, "record_id": record_id, "removed": removed},
            key=key,
            metadata=metadata,
        )
        return bool(event.data["removed"])  # a retry finds the record gone: the first run's answer stands
    return removed


def organization_mark_failed(
    *,
    organization_id: str,
    step: str,
    message: str,
    compensation: list[CompensationOutcome],
    key: str,
    metadata: EventMetadata,
) -> bool:
    """Compensation: record `organization.bootstrap_failed`. False when the organization was never created."""
    if not Organization.objects.filter(pk=organization_id).exists():
        return False
    data = {
        "step": step,
        "message": message,
        "compensation": [asdict(c) for c in compensation],
    }
    _append(organization_id, EventType.ORGANIZATION_BOOTSTRAP_FAILED, data, key=key, metadata=metadata)
    return True
