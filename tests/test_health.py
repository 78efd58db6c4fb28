"""/healthz and /readyz: answered ahead of host checks and redirects, ready only with a database and a cache."""

import os
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import timedelta

import httpx
import pytest

from tests.support.celery_worker import redis_db
from tests.support.net import free_port
from tests.support.servers import gunicorn
from tests.test_settings import PRODUCTION

PROBE = {"Host": "10.42.0.7"}


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


def settled(probe):
    """The first answer that gives Temporal's state: probes say "unknown" until the background check has asked."""
    for _ in range(100):
        response = probe()
        if response.json()["checks"]["temporal"] != "unknown":
            return response
        time.sleep(0.1)
    raise AssertionError(f"Temporal's state never reported: {response.json()}")


@pytest.mark.django_db
def test_ready_with_database_cache_and_temporal(client, production_like, temporal_env):
    response = settled(lambda: client.get("/readyz", **production_like))
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "cache": "ok", "temporal": "ok"}}


@pytest.mark.django_db
def test_still_ready_without_temporal_which_is_reported(client, settings, production_like):
    from temporal_bridge.client import temporal

    settings.TEMPORAL_ADDRESS = f"127.0.0.1:{free_port()}"  # nothing listens there
    temporal.reset()
    try:
        response = settled(lambda: client.get("/readyz", **production_like))
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
        live = httpx.get(f"{server.url}/healthz", headers=PROBE)
        ready = settled(lambda: httpx.get(f"{server.url}/readyz", headers=PROBE, timeout=30))
    assert live.status_code == 200
    assert ready.status_code == 503, server.output
    assert ready.json() == {
        "status": "unavailable",
        "checks": {"database": "unavailable", "cache": "ok", "temporal": "unavailable"},
    }
    assert str(database_port) not in ready.text and "onboarding" not in ready.text
    assert "Readiness: database unavailable (OperationalError)" in server.output
    assert "s3cret-db-pass" not in server.output


@pytest.fixture
def served(django_db_setup):
    """The environment of a production server whose database (the test database) and Redis cache are up."""
    from django.db import connection

    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "CACHE_"))},
        **PRODUCTION,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}",
        "CACHE_URL": f"rediscache://127.0.0.1:6379/{redis_db()}",
    }


@contextmanager
def black_hole() -> Iterator[str]:
    """host:port of a TCP server that takes every connection and never answers on it, as a dropped route looks."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    held, closing = [], threading.Event()

    def take() -> None:
        while not closing.is_set():
            with suppress(TimeoutError):
                held.append(listener.accept()[0])

    taker = threading.Thread(target=take, daemon=True)
    taker.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        closing.set()
        taker.join()
        for held_connection in held:
            held_connection.close()
        listener.close()


def test_concurrent_cache_checks_never_read_each_others_value(settings):
    """Every check writes a key of its own in the shared cache, so checks running at once all find theirs."""
    from a4c import health

    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:6379/{redis_db()}",
        }
    }

    def check_twenty_times(_) -> list[str]:
        return [health._outcome("cache", health._check_cache) for _ in range(20)]

    with ThreadPoolExecutor(50) as pool:
        outcomes = [outcome for batch in pool.map(check_twenty_times, range(50)) for outcome in batch]
    assert outcomes == ["ok"] * 1000


def test_a_flood_of_probes_never_fails_a_server_whose_database_and_cache_are_up(served):
    """Fifty clients probing a threaded server at once, five times each: every answer is ready."""
    env = {**served, "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}", "GUNICORN_THREADS": "8"}

    with gunicorn(env) as server:

        def probe_five_times(_) -> list[tuple[int, dict]]:
            with httpx.Client(timeout=30) as client:
                answers = [client.get(f"{server.url}/readyz", headers=PROBE) for _ in range(5)]
            return [(r.status_code, r.json()["checks"]) for r in answers]

        with ThreadPoolExecutor(50) as pool:
            answers = [answer for batch in pool.map(probe_five_times, range(50)) for answer in batch]

    assert len(answers) == 250
    assert {status for status, _ in answers} == {200}, server.output
    assert {(checks["database"], checks["cache"]) for _, checks in answers} == {("ok", "ok")}


def test_a_black_holed_temporal_neither_slows_nor_fails_a_probe(served):
    """Temporal that takes connections and never answers: every probe still answers ready within kubelet's default
    probe timeout (1 s), saying Temporal is unknown and then, once the background check gives up, unavailable."""
    with black_hole() as address, gunicorn({**served, "TEMPORAL_ADDRESS": address}) as server:
        answers = []
        # A client that gives up after 1 s, as kubelet does by default.
        with httpx.Client(base_url=server.url, headers=PROBE, timeout=1.0) as kubelet:
            for _ in range(200):
                response = kubelet.get("/readyz")
                answers.append((response.status_code, response.elapsed, response.json()["checks"]))
                if len(answers) >= 20 and answers[-1][2]["temporal"] == "unavailable":
                    break
                time.sleep(0.1)

    assert len(answers) >= 20
    assert {status for status, _, _ in answers} == {200}, server.output
    assert max(elapsed for _, elapsed, _ in answers) < timedelta(seconds=1)
    assert {checks["temporal"] for _, _, checks in answers} <= {"unknown", "unavailable"}
    assert answers[-1][2] == {"database": "ok", "cache": "ok", "temporal": "unavailable"}, server.output
    assert "Readiness: temporal unavailable (TemporalUnavailable)" in server.output
