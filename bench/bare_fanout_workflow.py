"""The bare fan-out's workflow for bench/invitations.py: it counts delivery signals, each invitation once, and
completes when all have arrived. No activity, no database.

The benchmark's Temporal worker imports this module through TEMPORAL_WORKER_MODULES, so the baseline's workflow
runs in the same `manage.py run_temporal_worker` process as the product's fan-out, with the same worker options
(sandbox, cache, task slots). Like every workflow module it imports only the standard library and temporalio at
the top: the workflow sandbox re-imports it for each run.
"""

import contextlib
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow

BARE_QUEUE = "bench_bare_fanout"
BARE_WORKFLOW = "BenchBareFanOutWorkflow"
BARE_SIGNAL = "bench_bare_delivery"


@dataclass(kw_only=True)
class BareFanOutInput:
    expected: int
    results_timeout: float = 600.0


@dataclass(kw_only=True)
class BareReport:
    """The fields of the product's DeliveryReport, so a signal carries and decodes as much."""

    invitation_id: str
    status: str
    attempts: int = 1
    error: str = ""
    bootstrap_attempt: int = 0


@dataclass(kw_only=True)
class BareFanOutResult:
    counted: int
    signals: int


@workflow.defn(name=BARE_WORKFLOW)
class BareFanOutWorkflow:
    def __init__(self) -> None:
        self.counted: set[str] = set()
        self.signals = 0

    @workflow.run
    async def run(self, params: BareFanOutInput) -> BareFanOutResult:
        with contextlib.suppress(TimeoutError):  # the script checks the count
            await workflow.wait_condition(
                lambda: len(self.counted) >= params.expected, timeout=timedelta(seconds=params.results_timeout)
            )
        return BareFanOutResult(counted=len(self.counted), signals=self.signals)

    @workflow.signal(name=BARE_SIGNAL)
    def delivery(self, report: BareReport) -> None:
        self.signals += 1
        self.counted.add(report.invitation_id)


if not workflow.unsafe.in_sandbox():
    # Registered with the worker's registry once, in the worker process; never from the sandbox's re-import.
    from temporal_bridge.registry import register

    register(BARE_QUEUE, workflows=[BareFanOutWorkflow])
