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
