import uuid

import pytest

from a4c.settings import VAR_DIR


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
