"""Temporal workers for the registered queues, with ORM-safe activity threads and a graceful drain."""

import asyncio
import contextlib
import importlib.abc
import importlib.machinery
import logging
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import connections
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from .registry import Recurring, discover, task_queue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerOptions:
    queues: tuple[str, ...]
    max_concurrent_activities: int
    shutdown_timeout: float
    max_cached_workflows: int
    max_concurrent_workflow_tasks: int

    @classmethod
    def from_settings(cls, queues=None, max_concurrent_activities=None, shutdown_timeout=None) -> "WorkerOptions":
        return cls(
            queues=tuple(queues or sorted(discover())),
            max_concurrent_activities=max_concurrent_activities or settings.TEMPORAL_MAX_CONCURRENT_ACTIVITIES,
            shutdown_timeout=settings.TEMPORAL_WORKER_SHUTDOWN_TIMEOUT
            if shutdown_timeout is None
            else shutdown_timeout,
            max_cached_workflows=settings.TEMPORAL_MAX_CACHED_WORKFLOWS,
            max_concurrent_workflow_tasks=settings.TEMPORAL_MAX_CONCURRENT_WORKFLOW_TASKS,
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


class _CachedCodeLoader(importlib.machinery.SourceFileLoader):
    def __init__(self, fullname: str, path: str, cache: dict) -> None:
        super().__init__(fullname, path)
        self._cache = cache

    def get_code(self, fullname: str):
        code = self._cache.get(self.path)
        if code is None:
            code = self._cache[self.path] = super().get_code(fullname)
        return code


class WorkflowCodeCache(importlib.abc.MetaPathFinder):
    """Keeps the compiled code of the workflow modules in memory, for the workflow sandbox.

    The sandbox imports a workflow's module afresh for every workflow it starts or replays (so no state
    leaks between workflows). Each import reads the module's bytecode file, or, where there is none
    (PYTHONDONTWRITEBYTECODE, read-only images), compiles the source again: about 4 ms of CPU per workflow.
    With this finder the module still runs afresh in each sandbox; only its compiled code is reused, and it
    is the code of the first import, so a source file edited under a running worker does not change it.
    """

    def __init__(self) -> None:
        self._modules: set[str] = set()
        self._code: dict[str, object] = {}

    @classmethod
    def install(cls, workflows) -> "WorkflowCodeCache":
        """The process's cache (installed first on sys.meta_path once), now also serving `workflows`' modules
        and the packages above them."""
        cache = next((f for f in sys.meta_path if isinstance(f, cls)), None)
        if cache is None:
            cache = cls()
            sys.meta_path.insert(0, cache)
        for workflow in workflows:
            parts = workflow.__module__.split(".")
            cache._modules.update(".".join(parts[:n]) for n in range(1, len(parts) + 1))
        return cache

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self._modules:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or type(spec.loader) is not importlib.machinery.SourceFileLoader:
            return None  # not a plain source module: the normal finders handle it
        spec.loader = _CachedCodeLoader(fullname, spec.origin, self._code)
        return spec


class MetricsUnavailable(RuntimeError):
    pass


def metrics_runtime(address: str) -> Runtime:
    """A Temporal runtime serving Prometheus metrics on `address` (host:port): the SDK's (workflows, activities,
    task slots and latencies) and the ones workflows record through their metric meter."""
    config = PrometheusConfig(
        bind_address=address, counters_total_suffix=True, unit_suffix=True, durations_as_seconds=True
    )
    try:
        return Runtime(telemetry=TelemetryConfig(metrics=config))
    except ValueError as exc:  # a bad address, or a port already taken
        raise MetricsUnavailable(f"Cannot serve metrics on {address}: {exc}") from exc


def build_workers(client: Client, options: WorkerOptions) -> tuple[list[Worker], list[ThreadPoolExecutor]]:
    registrations = check_queues(options.queues)
    # Sandboxes compile each workflow module once per process instead of once per workflow (measured in
    # bench/bootstrap.py: sandbox set-up 6 ms -> 2 ms of CPU per workflow, worker CPU per bootstrap -13%).
    WorkflowCodeCache.install(w for queue in options.queues for w in registrations[queue].workflows)
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
                # The bootstrap's steps are local activities, run inside its workflow task: with many tasks open,
                # each step queues behind the others' past the task timeout, and every timed-out task is redone.
                max_concurrent_workflow_tasks=options.max_concurrent_workflow_tasks,
                graceful_shutdown_timeout=timedelta(seconds=options.shutdown_timeout),
            )
        )
    return workers, executors


def _schedule(recurring: Recurring, queue: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            recurring.workflow.run, id=task_queue(recurring.schedule_id), task_queue=task_queue(queue)
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=recurring.every())]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),  # one run at a time
    )


def _updated(schedule: Schedule, current: ScheduleUpdateInput) -> ScheduleUpdate:
    # The action and the timing are the code's; the state (paused by an operator, with a note) is theirs.
    schedule.state = current.description.schedule.state
    return ScheduleUpdate(schedule=schedule)


async def ensure_schedules(client: Client, queues: Sequence[str]) -> None:
    """Create (or bring up to date) the schedules of the recurring workflows registered on these queues. Every
    worker does it at start; the schedule id makes it one schedule however many workers there are."""
    registrations = discover()
    for queue in queues:
        for recurring in registrations[queue].recurring:
            schedule, schedule_id = _schedule(recurring, queue), task_queue(recurring.schedule_id)
            try:
                await client.create_schedule(schedule_id, schedule)
            except ScheduleAlreadyRunningError:
                await client.get_schedule_handle(schedule_id).update(partial(_updated, schedule))


async def run_workers(client: Client, options: WorkerOptions, stop: asyncio.Event) -> None:
    """Poll until `stop` is set, then stop taking work and let in-flight activities finish (up to the
    shutdown timeout)."""
    workers, executors = build_workers(client, options)
    await ensure_schedules(client, options.queues)
    try:
        async with contextlib.AsyncExitStack() as stack:
            for worker in workers:
                await stack.enter_async_context(worker)
            log.info("Temporal worker polling %s", ", ".join(task_queue(q) for q in options.queues))
            await stop.wait()
            log.info("Draining in-flight work (up to %.0fs)", options.shutdown_timeout)
            # Every queue stops taking work at once and drains alongside the others, within one timeout (left to
            # the exit stack, the workers would shut down one after another while the rest kept polling).
            await asyncio.gather(*(worker.shutdown() for worker in workers))
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
