"""Invitation tests: the fan-out workflow registered, an organization to invite to, rate limits reset. The SMTP
server and the Celery worker are in tests/conftest.py."""

import pytest

from temporal_bridge.registry import register
from tests.support.organizations import organization_make

from .fanout_workflow import FanOutWorkflow

register("bootstrap", workflows=[FanOutWorkflow])


@pytest.fixture
def organization():
    """An organization projection row, made the way the bootstrap's first step makes it: by its event."""
    return organization_make()


@pytest.fixture
def users_worker(temporal_worker):
    """Temporal workers for the bootstrap queue (the test fan-out workflow and the invitation activities)
    and the users queue (UserInvitationWorkflow)."""
    with temporal_worker(["bootstrap", "users"]):
        yield


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
