import functools
import os
import uuid

import pytest
from django.db import connections

from a4c.settings import VAR_DIR
from tests.support.celery_worker import celery_idle, redis_db
from tests.support.mail import SmtpSink
from tests.support.net import free_port


def pytest_configure(config):
    VAR_DIR.mkdir(exist_ok=True)


@pytest.fixture(scope="session")
def temporal_address():
    """One real Temporal dev server (the `temporal` CLI) for the whole session."""
    from temporal_bridge.testing import dev_server

    with dev_server() as address:
        yield address


@pytest.fixture
def temporal_env(settings, temporal_address):
    """Point the app at the session's server, with task queues private to this test."""
    from temporal_bridge.client import temporal as facade

    settings.TEMPORAL_ADDRESS = temporal_address
    settings.TEMPORAL_TASK_QUEUE_PREFIX = f"t{uuid.uuid4().hex[:10]}-"
    facade.reset()
    yield settings
    facade.reset()


@pytest.fixture
def temporal_worker(temporal_env):
    """Run the registered workers (all queues) in a background thread for this test."""
    from temporal_bridge.testing import running_worker
    from temporal_bridge.worker import WorkerOptions

    def start(queues=None, **overrides):
        options = WorkerOptions.from_settings(queues, overrides.get("max_concurrent_activities"), 5.0)
        return running_worker(options)

    return start


@pytest.fixture
def history_keeper(temporal_env):
    """keep(workflow_id, workflow_class, path): replay a closed workflow's history with the current code, and with
    A4C_RECORD_HISTORIES=1 save it at `path` for the replay tests to check forever."""
    import asyncio

    from temporalio.service import RPCError
    from temporalio.worker import Replayer

    from temporal_bridge.client import temporal

    def keep(workflow_id: str, workflow_class: type, path, *, missing_ok: bool = False):
        try:
            history = temporal.run(lambda client: client.get_workflow_handle(workflow_id).fetch_history())
        except RPCError:
            if missing_ok:
                return None
            raise
        if not history.events and missing_ok:
            return None
        asyncio.run(Replayer(workflows=[workflow_class]).replay_workflow(history))
        if os.environ.get("A4C_RECORD_HISTORIES"):
            path.parent.mkdir(exist_ok=True)
            path.write_text(history.to_json())
        return history

    return keep


@pytest.fixture(scope="session")
def powerdns(tmp_path_factory):
    """One real PowerDNS authoritative server (Debian's pdns-server) on loopback ports for the session."""
    from tests.support.powerdns import running_powerdns

    with running_powerdns(tmp_path_factory.mktemp("powerdns")) as server:
        yield server


@pytest.fixture
def local_dns(settings):
    """`run_local_dns`'s server on a free loopback port, with verification pointed at it. The test needs
    database access that other threads can see (transaction=True) for the server to read the records."""
    from organizations.dns.local_server import LocalDnsServer

    server = LocalDnsServer("127.0.0.1", 0, base_domain=settings.DNS_BASE_DOMAIN, target=settings.DNS_TARGET)
    server.start()
    settings.DNS_VERIFY_RESOLVERS = [f"127.0.0.1:{server.port}"]
    settings.DNS_VERIFY_QUORUM = 1
    yield server
    server.stop()


@pytest.fixture
def browser():
    """A headless Chromium page factory (Debian's chromium through Playwright)."""
    from tests.support.browser import chromium

    with chromium() as instance:
        yield instance


@pytest.fixture
def smtp(settings):
    """A real SMTP server on a free port, with Django's SMTP mailer pointed at it (the test runner had
    swapped MAILERS for locmem)."""
    sink = SmtpSink(port=free_port())
    sink.start()
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": sink.port, "timeout": 5},
        }
    }
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def celery_app():
    from a4c.celery import app

    # The worker's Django fix-up would run system checks against every database, the contract tests' too.
    os.environ["CELERY_SKIP_CHECKS"] = "1"
    app.conf.broker_url = f"redis://127.0.0.1:6379/{redis_db()}"
    app.conf.broker_connection_retry_on_startup = True
    return app


@pytest.fixture
def celery_worker(celery_app):
    """A real Celery worker (thread pool) on Redis, consuming a queue private to this test."""
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun

    queue = f"invitations-test-{uuid.uuid4().hex[:10]}"
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue

    def close_connections(**kwargs):
        # Threads of the pool would otherwise keep their connections until the test database is dropped.
        connections.close_all()

    task_postrun.connect(close_connections, weak=False)
    try:
        with start_worker(
            celery_app,
            concurrency=8,
            pool="threads",
            perform_ping_check=False,
            shutdown_timeout=30,
            queues=[queue],
            loglevel="WARNING",
        ) as worker:
            worker.idle = functools.partial(celery_idle, celery_app, queue)
            yield worker
    finally:
        task_postrun.disconnect(close_connections)
        celery_app.conf.task_default_queue = previous
        import redis

        redis.Redis.from_url(celery_app.conf.broker_url).delete(queue)
