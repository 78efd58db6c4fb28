"""The web side's /metrics: state read from the projections, behind a bearer token."""

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from eventstore.events import EventMetadata
from eventstore.models import Event
from invitations import services as invitation_services
from invitations.payloads import Invitee
from tests.support.organizations import organization_make

pytestmark = pytest.mark.django_db

TOKEN = "scrape-token-for-tests"


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def test_metrics_are_off_without_a_token(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", TOKEN])
def test_a_scrape_without_the_token_is_refused(client, settings, authorization):
    settings.METRICS_TOKEN = TOKEN
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = client.get("/metrics", **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"a4c_" not in response.content


def test_the_figures_follow_the_projections(client, settings):
    settings.METRICS_TOKEN = TOKEN
    before = scrape(client)
    assert before[("a4c_organizations", (("status", "active"),))] == 0
    assert before[("a4c_invitations", (("status", "pending"),))] == 0

    organization_make("Pending Care")
    active = organization_make("Active Care", active=True)
    invitation_services.invitations_generate(
        organization_id=active,
        invitees=[Invitee(email="first@example.org"), Invitee(email="second@example.org")],
        key_prefix="metrics",
        metadata=EventMetadata(),
    )
    after = scrape(client)

    assert after[("a4c_organizations", (("status", "pending"),))] == 1
    assert after[("a4c_organizations", (("status", "active"),))] == 1
    assert after[("a4c_organizations", (("status", "failed"),))] == 0  # every status is listed, for alerts
    assert after[("a4c_invitations", (("status", "pending"),))] == 2
    assert after[("a4c_invitation_email_deliveries", (("status", "failed"),))] == 0
    assert after[("a4c_onboarding_requests", (("bootstrap", "not_started"),))] == 0
    newest = Event.objects.order_by("-position").values_list("position", flat=True).first()
    assert after[("a4c_event_store_position", ())] == newest > before[("a4c_event_store_position", ())]
    assert before[("a4c_organizations_pending_oldest_seconds", ())] == 0


def test_the_oldest_pending_organization_shows_how_long_its_bootstrap_has_taken(client, settings):
    import datetime

    from organizations.models import Organization

    settings.METRICS_TOKEN = TOKEN
    stuck = organization_make("Stuck Care")
    organization_make("Done Care", active=True)
    Organization.objects.filter(pk=stuck).update(created_at=timezone.now() - datetime.timedelta(hours=2))
    organization_make("Fresh Care")
    age = scrape(client)[("a4c_organizations_pending_oldest_seconds", ())]
    assert 2 * 3600 <= age < 2 * 3600 + 60
