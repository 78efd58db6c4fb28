"""Temporal workers for the registered queues, with ORM-safe activity threads and a graceful drain."""

import asyncio
import contextlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connections
from temporalio.client import Client
from temporalio.worker import Worker

from .registry import discover, task_queue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerOptions:
    queues: tuple[str, ...]
    max_concurrent_activities: int
    shutdown_timeout: float
    max_cached_workflows: int

    @classmethod
    def from_settings(cls, queues=None, max_concurrent_activities=None, shutdown_timeout=None) -> "WorkerOptions":
        return cls(
            queues=tuple(queues or sorted(discover())),
            max_concurrent_activities=max_concurrent_activities or settings.TEMPORAL_MAX_CONCURRENT_ACTIVITIES,
            shutdown_timeout=settings.TEMPORAL_WORKER_SHUTDOWN_TIMEOUT
            if shutdown_timeout is None
            else shutdown_timeout,
            max_cached_workflows=settings.TEMPORAL_MAX_CACHED_WORKFLOWS,
        )


class UnknownQueue(ValueError):
    pass


def check_queues(queues) -> dict:
    registrations = discover()
    if unknown := set(queues) - set(registrations):
        raise UnknownQueue(
            f"No workflows or activities are registered for {', '.join(sorted(unknown))}; "
            f"known queues: {', '.join(sorted(registrations))}."
        )
    return registrations


def build_workers(client: Client, options: WorkerOptions) -> tuple[list[Worker], list[ThreadPoolExecutor]]:
    registrations = check_queues(options.queues)
    workers, executors = [], []
    for queue in options.queues:
        registration = registrations[queue]
        # One thread per activity slot: sync ORM activities never wait for a thread, and never share one.
        executor = ThreadPoolExecutor(
            max_workers=options.max_concurrent_activities, thread_name_prefix=f"activity-{queue}"
        )
        executors.append(executor)
        workers.append(
            Worker(
                client,
                task_queue=task_queue(queue),
                workflows=registration.workflows,
                activities=registration.activities,
                activity_executor=executor,
                max_concurrent_activities=options.max_concurrent_activities,
                max_cached_workflows=options.max_cached_workflows,
                graceful_shutdown_timeout=timedelta(seconds=options.shutdown_timeout),
            )
        )
    return workers, executors


async def run_workers(client: Client, options: WorkerOptions, stop: asyncio.Event) -> None:
    """Poll until `stop` is set, then stop taking work and let in-flight activities finish (up to the
    shutdown timeout)."""
    workers, executors = build_workers(client, options)
    try:
        async with contextlib.AsyncExitStack() as stack:
            for worker in workers:
                await stack.enter_async_context(worker)
            log.info("Temporal worker polling %s", ", ".join(task_queue(q) for q in options.queues))
            await stop.wait()
            log.info("Draining in-flight work (up to %.0fs)", options.shutdown_timeout)
    finally:
        for executor in executors:
            await asyncio.get_running_loop().run_in_executor(
                None, close_thread_connections, executor, options.max_concurrent_activities
            )
            executor.shutdown(wait=False, cancel_futures=True)


def close_thread_connections(executor: ThreadPoolExecutor, size: int, timeout: float = 5.0) -> None:
    """Close the database connections held by each of the executor's `size` threads, on that thread.

    One job per thread, held at a barrier until every thread has one, so no thread takes two.
    """
    barrier = threading.Barrier(size)

    def close() -> None:
        connections.close_all()
        barrier.wait(timeout)

    jobs = [executor.submit(close) for _ in range(size)]
    for job in jobs:
        with contextlib.suppress(Exception):
            job.result(timeout + 1)
