"""Invitation tests: an organization to invite to, rate limits reset. The SMTP server and the Celery worker are in
tests/conftest.py."""

from pathlib import Path

import pytest

from tests.support.organizations import organization_make

HISTORIES = Path(__file__).parent / "histories"


@pytest.fixture
def organization():
    """An organization projection row, made the way the bootstrap's first step makes it: by its event."""
    return organization_make()


@pytest.fixture
def users_worker(temporal_worker):
    """A Temporal worker for the users queue (the fan-out and lifecycle workflows and their activities)."""
    with temporal_worker(["users"]):
        yield


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
