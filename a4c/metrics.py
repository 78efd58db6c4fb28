"""The web side's Prometheus metrics: the state of organizations, invitations and emails, read from the projections
when Prometheus scrapes `/metrics`. What happens inside bootstraps (outcomes, failed steps, DNS verification time,
activity failures and latencies) is counted by the Temporal worker on its own endpoint (TEMPORAL_METRICS_ADDRESS).

The endpoint answers only with METRICS_TOKEN as a bearer token, and 404 when no token is configured.
"""

import secrets

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from eventstore.selectors import last_position
from invitations.selectors import delivery_counts, invitation_counts
from onboarding.selectors import onboarding_request_counts
from organizations.selectors import oldest_pending_organization_age, organization_counts


def _gauge(name: str, documentation: str, label: str, counts: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for value, count in counts.items():
        family.add_metric([value], count)
    return family


class ProjectionCollector:
    """Reads the figures at each scrape (a few grouped counts on indexed columns), so they are never stale."""

    def collect(self):
        yield _gauge("a4c_organizations", "Organizations by status.", "status", organization_counts())
        yield GaugeMetricFamily(
            "a4c_organizations_pending_oldest_seconds",
            "Age of the oldest organization still pending (its bootstrap under way or stuck); 0 when none is.",
            value=oldest_pending_organization_age(),
        )
        yield _gauge(
            "a4c_onboarding_requests",
            "Onboarding requests, by whether their bootstrap started.",
            "bootstrap",
            onboarding_request_counts(),
        )
        yield _gauge("a4c_invitations", "Invitations by status.", "status", invitation_counts())
        yield _gauge(
            "a4c_invitation_email_deliveries", "Invitation email deliveries by status.", "status", delivery_counts()
        )
        yield GaugeMetricFamily(
            "a4c_event_store_position",
            "Position of the newest domain event: it rises with every append (rolled-back appends leave gaps).",
            value=last_position(),
        )


registry = CollectorRegistry(auto_describe=False)
registry.register(ProjectionCollector())


def _authorized(request: HttpRequest) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    expected = settings.METRICS_TOKEN.encode()
    return scheme.lower() == "bearer" and secrets.compare_digest(token.strip().encode(), expected)


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not settings.METRICS_TOKEN:
        raise Http404("Metrics are not enabled.")
    if not _authorized(request):
        response = HttpResponse("A bearer token is required.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
