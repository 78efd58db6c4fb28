"""The Celery side of the tests: a Redis database per test session and a check that a worker has gone idle."""

import os
import zlib


def redis_db() -> int:
    """A Redis database for this test session's isolation name: never 15 (the default tests') or 0."""
    name = os.environ.get("A4C_TEST_ISOLATION", "")
    return 1 + zlib.crc32(name.encode()) % 14 if name else 14


def celery_idle(app, queue: str) -> bool:
    """Nothing queued for the test's queue, and nothing running or waiting (countdowns) in the worker."""
    import redis
    from celery.worker import state

    broker = redis.Redis.from_url(app.conf.broker_url)
    return (
        not state.active_requests
        and not state.reserved_requests
        and not state.scheduled_requests  # a retry with a countdown waits here, taken but not run
        and broker.llen(queue) == 0
        and broker.hlen("unacked") == 0  # delivered to a worker and not yet acknowledged (acks_late)
    )
