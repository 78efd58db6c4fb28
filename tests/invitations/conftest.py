"""Real parts for the invitation tests: an SMTP server (aiosmtpd) in this process, a Celery worker on Redis
consuming a queue private to the test, and the Temporal dev server (tests/conftest.py)."""

import asyncio
import email
import email.policy
import functools
import os
import re
import socket
import threading
import uuid
import zlib
from dataclasses import dataclass, field

import pytest
from aiosmtpd.controller import Controller
from django.db import connections

from eventstore.catalogue import EventType, StreamType
from eventstore.events import NewEvent
from eventstore.services import events_append
from temporal_bridge.registry import register

from .fanout_workflow import FanOutWorkflow

register("bootstrap", workflows=[FanOutWorkflow])

LINK = re.compile(r"https?://[^\s\"<>]+/invitations/accept/([A-Za-z0-9_.\-]+)/")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SmtpSink:
    """Collects every message; can answer 451 to the next N messages, or be stopped and started again."""

    port: int
    messages: list = field(default_factory=list)
    fail_next: int = 0
    refused: int = 0
    _controller: Controller | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                self.refused += 1
                return "451 4.3.0 Mailbox busy, try again later"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._arrived:
            self.messages.append((envelope.rcpt_tos, message))
            self._arrived.notify_all()
        return "250 OK"

    def start(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def wait_for(self, count: int, timeout: float = 60.0) -> list:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.messages) >= count, timeout=timeout)
            return list(self.messages)

    def to(self, address: str) -> list:
        return [m for rcpt, m in self.messages if address in rcpt]

    @staticmethod
    def text(message) -> str:
        return message.get_body(preferencelist=("plain",)).get_content()

    @staticmethod
    def html(message) -> str:
        return message.get_body(preferencelist=("html",)).get_content()

    def token_for(self, address: str, index: int = -1) -> str:
        messages = self.to(address)
        assert messages, f"no email reached {address}"
        match = LINK.search(self.text(messages[index]))
        assert match, "the email carries no invitation link"
        return match.group(1)


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


def _redis_db() -> int:
    """A Redis database for this test session's isolation name: never 15 (the default tests') or 0."""
    name = os.environ.get("A4C_TEST_ISOLATION", "")
    return 1 + zlib.crc32(name.encode()) % 14 if name else 14


@pytest.fixture(scope="session")
def celery_app():
    from a4c.celery import app

    # The worker's Django fix-up would run system checks against every database, the contract tests' too.
    os.environ["CELERY_SKIP_CHECKS"] = "1"
    app.conf.broker_url = f"redis://127.0.0.1:6379/{_redis_db()}"
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
            worker.idle = functools.partial(_celery_idle, celery_app, queue)
            yield worker
    finally:
        task_postrun.disconnect(close_connections)
        celery_app.conf.task_default_queue = previous
        import redis

        redis.Redis.from_url(celery_app.conf.broker_url).delete(queue)


def _celery_idle(app, queue: str) -> bool:
    """Nothing queued for the test's queue, and nothing running or waiting (countdowns) in the worker."""
    import redis
    from celery.worker import state

    return (
        not state.active_requests
        and not state.reserved_requests
        and redis.Redis.from_url(app.conf.broker_url).llen(queue) == 0
    )


@pytest.fixture
def organization():
    """An organization projection row, made the way the bootstrap's first step makes it: by its event."""
    return make_organization()


def make_organization(name: str = "Harbor Health") -> str:
    org_id = str(uuid.uuid4())
    subdomain = f"o{org_id[:8]}"
    events_append(
        stream_type=StreamType.ORGANIZATION,
        stream_id=org_id,
        events=[
            NewEvent(
                EventType.ORGANIZATION_CREATED,
                {
                    "name": name,
                    "type": "provider",
                    "subdomain": subdomain,
                    "domain": f"{subdomain}.a4c.test",
                    "parent_id": None,
                },
            )
        ],
        expected_version=0,
    )
    return org_id


@pytest.fixture
def users_worker(temporal_worker):
    """Temporal workers for the bootstrap queue (the test fan-out workflow and the invitation activities)
    and the users queue (UserInvitationWorkflow)."""
    with temporal_worker(["bootstrap", "users"]):
        yield


def run_async(coro):
    return asyncio.run(coro)


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
