import pytest

# The invitation tests' real SMTP server and Celery worker, shared here.
from tests.invitations.conftest import celery_app, celery_worker, smtp  # noqa: F401


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
def mail_pipeline(smtp, celery_worker):  # noqa: F811
    """Invitation emails really delivered: a Celery worker on Redis sending to an SMTP server in this process."""
    return smtp
