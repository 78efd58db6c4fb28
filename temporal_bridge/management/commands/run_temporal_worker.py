import asyncio
import logging
import os
import signal
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from temporalio.runtime import Runtime

from temporal_bridge.client import connect
from temporal_bridge.worker import (
    MetricsUnavailable,
    UnknownQueue,
    WorkerOptions,
    check_queues,
    metrics_runtime,
    run_workers,
)

log = logging.getLogger("temporal_bridge.worker")


class Command(BaseCommand):
    help = "Run the Temporal worker for the registered task queues until SIGTERM or SIGINT, then drain."

    def add_arguments(self, parser):
        parser.add_argument(
            "--task-queue",
            action="append",
            dest="queues",
            metavar="NAME",
            help="A queue to serve (repeatable; default: every registered queue).",
        )
        parser.add_argument("--max-concurrent-activities", type=int, help="Activity slots (and threads) per queue.")
        parser.add_argument("--shutdown-timeout", type=float, help="Seconds to let in-flight activities finish.")
        parser.add_argument(
            "--connect-timeout", type=float, default=60.0, help="Seconds to keep trying to reach Temporal at start."
        )

    def handle(self, *args, queues, max_concurrent_activities, shutdown_timeout, connect_timeout, **options):
        if max_concurrent_activities is not None and max_concurrent_activities < 1:
            raise CommandError("--max-concurrent-activities must be at least 1.")
        opts = WorkerOptions.from_settings(queues, max_concurrent_activities, shutdown_timeout)
        try:
            check_queues(opts.queues)
            runtime = metrics_runtime(settings.TEMPORAL_METRICS_ADDRESS) if settings.TEMPORAL_METRICS_ADDRESS else None
        except (UnknownQueue, MetricsUnavailable) as exc:
            raise CommandError(str(exc)) from None
        if runtime is not None:
            self.stdout.write(f"Metrics at http://{settings.TEMPORAL_METRICS_ADDRESS}/metrics")
        asyncio.run(self._serve(opts, connect_timeout, runtime))

    async def _connect(self, timeout: float, runtime: Runtime | None):
        deadline = time.monotonic() + timeout
        while True:
            try:
                return await connect(runtime)
            except RuntimeError as exc:
                if time.monotonic() > deadline:
                    raise CommandError(f"Cannot reach Temporal at {settings.TEMPORAL_ADDRESS}: {exc}") from None
                log.warning("Waiting for Temporal at %s", settings.TEMPORAL_ADDRESS)
                await asyncio.sleep(1)

    async def _serve(self, opts: WorkerOptions, connect_timeout: float, runtime: Runtime | None) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()

        def on_signal(signum: int) -> None:
            if stop.is_set():
                log.warning("Second %s: exiting without waiting", signal.Signals(signum).name)
                os._exit(1)
            log.info("%s received: finishing in-flight work", signal.Signals(signum).name)
            stop.set()
            # Sync activities cannot be interrupted; if one outlives the drain, leave without it.
            watchdog = threading.Timer(opts.shutdown_timeout + 15, self._force_exit)
            watchdog.daemon = True
            watchdog.start()

        # Installed explicitly, so the worker also stops cleanly as PID 1 in a container.
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal, signum)
        # Waiting for Temporal at start is itself stoppable: a stop then leaves at once, having taken no work.
        connecting = asyncio.ensure_future(self._connect(connect_timeout, runtime))
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({connecting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not connecting.done():
            connecting.cancel()
            self.stdout.write("Temporal worker stopped before it reached Temporal")
            return
        client = connecting.result()
        self.stdout.write(f"Temporal worker serving {', '.join(opts.queues)} (Ctrl-C to stop)")
        await run_workers(client, opts, stop)
        self.stdout.write("Temporal worker stopped")

    @staticmethod
    def _force_exit() -> None:
        log.error("In-flight activities did not finish within the shutdown timeout; exiting anyway")
        os._exit(1)
