import asyncio
import os
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer


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
# Bump when the workflow's commands change behind a new workflow.patched() id; older files stay and keep
# being replayed.
HISTORY_GENERATION = "v7"


@pytest.fixture
def keep_history():
    """Replay a finished bootstrap's history with the current workflow code (a determinism check on every
    run), and with A4C_RECORD_HISTORIES=1 save it under histories/ for the replay test to check forever."""
    from organizations.payloads import bootstrap_workflow_id
    from organizations.workflows import OrganizationBootstrapWorkflow
    from temporal_bridge.client import temporal

    def keep(organization_id, name: str) -> WorkflowHistory:
        workflow_id = bootstrap_workflow_id(str(organization_id))
        history = temporal.run(lambda client: client.get_workflow_handle(workflow_id).fetch_history())
        asyncio.run(Replayer(workflows=[OrganizationBootstrapWorkflow]).replay_workflow(history))
        if os.environ.get("A4C_RECORD_HISTORIES"):
            HISTORIES.mkdir(exist_ok=True)
            (HISTORIES / f"{HISTORY_GENERATION}_{name}.json").write_text(history.to_json())
        return history

    return keep
