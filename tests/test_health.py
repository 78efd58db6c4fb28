"""/healthz and /readyz: answered ahead of host checks and redirects, ready only with a database and a cache."""

import os

import httpx
import pytest

from tests.support.net import free_port
from tests.support.servers import gunicorn
from tests.test_settings import PRODUCTION


@pytest.fixture
def production_like(settings):
    """Probes come over plain HTTP, with the pod's address as Host, to a server that redirects to HTTPS."""
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["onboarding.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    return {"HTTP_HOST": "10.42.0.7:8000"}


def test_liveness_answers_a_probe_from_any_address_over_plain_http(client, production_like):
    response = client.get("/healthz", **production_like)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    # Everything else still gets the host check and the redirect.
    assert client.get("/admin/", **production_like).status_code == 400


@pytest.mark.django_db
def test_ready_with_database_cache_and_temporal(client, production_like, temporal_env):
    response = client.get("/readyz", **production_like)
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "cache": "ok", "temporal": "ok"}}


@pytest.mark.django_db
def test_still_ready_without_temporal_which_is_reported(client, settings, production_like):
    from temporal_bridge.client import temporal

    settings.TEMPORAL_ADDRESS = f"127.0.0.1:{free_port()}"  # nothing listens there
    temporal.reset()
    try:
        response = client.get("/readyz", **production_like)
    finally:
        temporal.reset()
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "cache": "ok", "temporal": "unavailable"}


def test_not_ready_without_the_database_and_no_detail_given_away():
    """The real server, pointed at a database that does not answer: /readyz says 503, /healthz still 200, and the
    probe's answer names no host, port or user."""
    database_port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))},
        **PRODUCTION,
        "DATABASE_URL": f"postgres://onboarding:s3cret-db-pass@127.0.0.1:{database_port}/a4c",
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # nothing listens there either
    }
    with gunicorn(env) as server:
        live = httpx.get(f"{server.url}/healthz", headers={"Host": "10.42.0.7"})
        ready = httpx.get(f"{server.url}/readyz", headers={"Host": "10.42.0.7"}, timeout=30)
    assert live.status_code == 200
    assert ready.status_code == 503, server.output
    assert ready.json() == {
        "status": "unavailable",
        "checks": {"database": "unavailable", "cache": "ok", "temporal": "unavailable"},
    }
    assert str(database_port) not in ready.text and "onboarding" not in ready.text
    assert "Readiness: database unavailable (OperationalError)" in server.output
    assert "s3cret-db-pass" not in server.output
