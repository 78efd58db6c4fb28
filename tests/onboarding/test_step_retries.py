"""A bootstrap step that Temporal runs again after its first run committed (the completion was lost, the worker
died) finds its own event and reports what the first run did, even when running it again computes another
payload."""

import uuid

import pytest

from eventstore.events import EventMetadata
from eventstore.exceptions import IdempotencyConflictError
from eventstore.models import Event
from organizations import services as organization_services
from organizations.models import Organization, OrganizationStatus

pytestmark = pytest.mark.django_db

META = EventMetadata(correlation_id="step-retries")


def _create(org_id: str, subdomain: str, attempt: int) -> Organization:
    return organization_services.organization_create(
        organization_id=org_id,
        name="Acme Health",
        type="provider",
        subdomain=subdomain,
        parent_id=None,
        attempt=attempt,
        key=f"org-bootstrap-{org_id}/{attempt}/create_organization",
        metadata=META,
    )


def _new() -> tuple[str, str]:
    return str(uuid.uuid4()), f"s{uuid.uuid4().hex[:10]}"


def _event_types(org_id: str) -> list[str]:
    return list(Event.objects.filter(stream_id=org_id).order_by("position").values_list("event_type", flat=True))


def test_a_retried_create_of_a_restarted_bootstrap_finds_its_restart():
    org_id, subdomain = _new()
    _create(org_id, subdomain, 1)
    organization_services.organization_mark_failed(
        organization_id=org_id, step="verify_dns", message="m", compensation=[], key=f"{org_id}/1/fail", metadata=META
    )
    assert _create(org_id, subdomain, 2).status == OrganizationStatus.PENDING
    again = _create(org_id, subdomain, 2)
    assert (again.status, again.bootstrap_attempt) == (OrganizationStatus.PENDING, 2)
    assert _event_types(org_id) == [
        "organization.created",
        "organization.bootstrap_failed",
        "organization.bootstrap_restarted",
    ]


def test_a_retried_dns_removal_reports_the_first_runs_removal():
    org_id, subdomain = _new()
    _create(org_id, subdomain, 1)
    organization_services.organization_dns_configure(
        organization_id=org_id, subdomain=subdomain, key=f"{org_id}/1/configure_dns", metadata=META
    )
    remove = {"organization_id": org_id, "subdomain": subdomain, "record_id": "", "metadata": META}
    assert organization_services.organization_dns_remove(key=f"{org_id}/1/remove_dns", **remove) is True
    # Run again: the record is gone now, but the step did remove it.
    assert organization_services.organization_dns_remove(key=f"{org_id}/1/remove_dns", **remove) is True
    assert _event_types(org_id).count("organization.dns_removed") == 1


@pytest.mark.django_db(transaction=True)  # the DNS servers read the record from their own connections
def test_a_retried_dns_check_answered_by_other_resolvers_keeps_the_first_verdict(settings):
    from organizations.dns.local_server import LocalDnsServer

    resolvers = [
        LocalDnsServer("127.0.0.1", 0, base_domain=settings.DNS_BASE_DOMAIN, target=settings.DNS_TARGET)
        for _ in range(3)
    ]
    for resolver in resolvers:
        resolver.start()
    try:
        settings.DNS_PROVIDER, settings.DNS_VERIFY_QUORUM, settings.DNS_VERIFY_TIMEOUT = "local", 2, 1.0
        settings.DNS_VERIFY_RESOLVERS = [f"127.0.0.1:{r.port}" for r in resolvers]
        org_id, subdomain = _new()
        _create(org_id, subdomain, 1)
        dns = organization_services.organization_dns_configure(
            organization_id=org_id, subdomain=subdomain, key=f"{org_id}/1/configure_dns", metadata=META
        )
        check = {
            "organization_id": org_id,
            "fqdn": dns.fqdn,
            "target": dns.target,
            "proxied": False,
            "key": f"{org_id}/1/verify_dns",
            "metadata": META,
        }
        first = organization_services.organization_dns_verify(**check)
        resolvers[2].stop()  # the retry is answered by two resolvers only
        second = organization_services.organization_dns_verify(**check)
    finally:
        for resolver in resolvers:
            resolver.stop()
    everyone = settings.DNS_VERIFY_RESOLVERS
    assert first.verified and sorted(first.verified_by) == sorted(everyone)
    assert second.verified and sorted(second.verified_by) == sorted(everyone), "the first run's verdict"
    assert _event_types(org_id).count("organization.dns_verified") == 1


def test_a_key_reused_for_another_step_is_still_a_conflict():
    org_id, subdomain = _new()
    _create(org_id, subdomain, 1)
    organization_services.organization_dns_configure(
        organization_id=org_id, subdomain=subdomain, key=f"{org_id}/1/configure_dns", metadata=META
    )
    with pytest.raises(IdempotencyConflictError):
        organization_services.organization_dns_remove(
            organization_id=org_id,
            subdomain=subdomain,
            record_id="",
            key=f"org-bootstrap-{org_id}/1/create_organization",
            metadata=META,
        )
