from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory


@pytest.fixture
def cloudflare(settings):
    """The fake Cloudflare v4 API (tests/support) with the base domain's zone, chosen as the DNS provider."""
    from tests.support.fake_cloudflare import running_fake_cloudflare

    with running_fake_cloudflare("cf-test-token") as fake:
        fake.add_zone(settings.DNS_BASE_DOMAIN)
        settings.DNS_PROVIDER = "cloudflare"
        settings.CLOUDFLARE_API_TOKEN = "cf-test-token"
        settings.CLOUDFLARE_BASE_URL = fake.base_url
        settings.CLOUDFLARE_ZONE_NAME = settings.DNS_BASE_DOMAIN
        yield fake


@pytest.fixture
def mail_pipeline(smtp, celery_worker):
    """Invitation emails really delivered: a Celery worker on Redis sending to an SMTP server in this process."""
    return smtp


HISTORIES = Path(__file__).parent / "histories"
INVITATION_HISTORIES = Path(__file__).parents[1] / "invitations" / "histories"


@pytest.fixture
def keep_history(history_keeper):
    """Replay a finished bootstrap's history (and its email fan-out's, when it ran one) with the current workflow
    code, a determinism check on every run; with A4C_RECORD_HISTORIES=1 save them for the replay tests."""
    from invitations.payloads import bootstrap_delivery_workflow_id
    from invitations.workflows import InvitationDeliveryWorkflow
    from onboarding.payloads import bootstrap_workflow_id
    from onboarding.workflows import OrganizationBootstrapWorkflow

    def keep(organization_id, name: str, attempt: int = 1) -> WorkflowHistory:
        history = history_keeper(
            bootstrap_workflow_id(str(organization_id)), OrganizationBootstrapWorkflow, HISTORIES / f"{name}.json"
        )
        delivery = bootstrap_delivery_workflow_id(str(organization_id), attempt)
        fan_out = INVITATION_HISTORIES / f"delivery_{name}.json"
        history_keeper(delivery, InvitationDeliveryWorkflow, fan_out, missing_ok=True)
        return history

    return keep
