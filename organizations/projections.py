"""The organization projection: folds organization events into `Organization` rows, a batch at a time."""

from collections.abc import Callable, Sequence

from eventstore.catalogue import EventType
from eventstore.events import RecordedEvent
from eventstore.projections import Projection, register

from .models import DnsStatus, Organization, OrganizationStatus

_MUTABLE_FIELDS = [
    f.name for f in Organization._meta.concrete_fields if f.name not in ("id", "parent", "path", "depth", "created_at")
]


def _created(_: None, event: RecordedEvent, parent: Organization | None) -> Organization:
    data = event.data
    return Organization(
        id=event.stream_id,
        name=data["name"],
        type=data["type"],
        parent_id=data.get("parent_id"),
        path=(parent.path if parent else "") + event.stream_id.replace("-", ""),
        depth=parent.depth + 1 if parent else 0,
        subdomain=data["subdomain"],
        domain=data["domain"],
        status=OrganizationStatus.PENDING,
        dns_status=DnsStatus.NOT_CONFIGURED,
        bootstrap_attempt=data.get("attempt", 1),
        created_at=event.created_at,
        updated_at=event.created_at,
        version=event.stream_version,
    )


def _restarted(org: Organization, event: RecordedEvent) -> None:
    org.status = OrganizationStatus.PENDING
    org.bootstrap_attempt = event.data["attempt"]
    org.failed_step = org.failure_message = ""
    org.failed_at = None


def _dns_configured(org: Organization, event: RecordedEvent) -> None:
    org.dns_status = DnsStatus.CONFIGURED
    org.dns_provider = event.data["provider"]
    org.dns_record_id = event.data.get("record_id", "")


def _dns_verified(org: Organization, event: RecordedEvent) -> None:
    org.dns_status = DnsStatus.VERIFIED


def _dns_removed(org: Organization, event: RecordedEvent) -> None:
    org.dns_status = DnsStatus.REMOVED
    org.dns_record_id = ""


def _activated(org: Organization, event: RecordedEvent) -> None:
    org.status = OrganizationStatus.ACTIVE
    org.activated_at = event.created_at


def _deactivated(org: Organization, event: RecordedEvent) -> None:
    org.status = OrganizationStatus.DEACTIVATED
    org.deactivated_at = event.created_at


def _bootstrap_failed(org: Organization, event: RecordedEvent) -> None:
    org.status = OrganizationStatus.FAILED
    org.failed_step = event.data["step"]
    org.failure_message = event.data.get("message", "")
    org.failed_at = event.created_at


_APPLY: dict[str, Callable[[Organization, RecordedEvent], None]] = {
    EventType.ORGANIZATION_BOOTSTRAP_RESTARTED: _restarted,
    EventType.ORGANIZATION_DNS_CONFIGURED: _dns_configured,
    EventType.ORGANIZATION_DNS_VERIFIED: _dns_verified,
    EventType.ORGANIZATION_DNS_REMOVED: _dns_removed,
    EventType.ORGANIZATION_ACTIVATED: _activated,
    EventType.ORGANIZATION_DEACTIVATED: _deactivated,
    EventType.ORGANIZATION_BOOTSTRAP_FAILED: _bootstrap_failed,
}


class OrganizationMissing(LookupError):
    pass


@register
class OrganizationProjection(Projection):
    name = "organizations"
    handles = frozenset({EventType.ORGANIZATION_CREATED, *_APPLY})
    models = (Organization,)

    def apply(self, events: Sequence[RecordedEvent], *, using: str) -> None:
        created_here = {e.stream_id for e in events if e.event_type == EventType.ORGANIZATION_CREATED}
        wanted = {e.stream_id for e in events} | {
            e.data["parent_id"]
            for e in events
            if e.event_type == EventType.ORGANIZATION_CREATED and e.data.get("parent_id")
        }
        wanted -= created_here
        rows = {str(pk): org for pk, org in Organization.objects.using(using).in_bulk(wanted).items()} if wanted else {}
        new: dict[str, Organization] = {}
        changed: dict[str, Organization] = {}
        for event in events:
            if event.event_type == EventType.ORGANIZATION_CREATED:
                parent_id = event.data.get("parent_id")
                parent = rows.get(parent_id) if parent_id else None
                if parent_id and parent is None:
                    raise OrganizationMissing(f"Parent organization {parent_id} does not exist.")
                rows[event.stream_id] = new[event.stream_id] = _created(None, event, parent)
                continue
            org = rows.get(event.stream_id)
            if org is None:
                raise OrganizationMissing(f"{event.event_type} for unknown organization {event.stream_id}.")
            _APPLY[event.event_type](org, event)
            org.version, org.updated_at = event.stream_version, event.created_at
            if event.stream_id not in new:
                changed[event.stream_id] = org
        manager = Organization.objects.using(using)
        if new:
            manager.bulk_create(new.values())
        if len(changed) == 1:
            next(iter(changed.values())).save(using=using, update_fields=_MUTABLE_FIELDS)
        elif changed:
            manager.bulk_update(changed.values(), _MUTABLE_FIELDS, batch_size=500)
