"""The baseline workflow of bench/bootstrap.py: N no-op activities and one timer, nothing else.

The benchmark's Temporal worker imports this module through TEMPORAL_WORKER_MODULES, so the baseline runs in
the same `manage.py run_temporal_worker` process, with the same worker options and an activity executor of
the same size as the bootstrap. Like every workflow module it imports only the standard library and
temporalio at the top: the workflow sandbox re-imports it for each workflow run.
"""

from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

BASELINE_QUEUE = "bench_baseline"
BASELINE_WORKFLOW = "BenchBaselineWorkflow"
NOOP_ACTIVITY = "bench.noop"


@dataclass
class BaselineInput:
    activities: int
    timer_seconds: float
    timer_after: int  # how many activities run before the timer (the bootstrap's wait comes after two)
    activity_timeout: float = 600.0


@dataclass
class NoopInput:
    step: int


@workflow.defn(name=BASELINE_WORKFLOW)
class BaselineWorkflow:
    @workflow.run
    async def run(self, params: BaselineInput) -> int:
        for step in range(params.activities):
            if step == params.timer_after:
                await workflow.sleep(timedelta(seconds=params.timer_seconds))
            await workflow.execute_activity(
                NOOP_ACTIVITY,
                NoopInput(step),
                start_to_close_timeout=timedelta(seconds=params.activity_timeout),
                # The bootstrap's activity retry policy, so both sides schedule the same commands.
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30), maximum_attempts=5),
            )
        return params.activities


# Synchronous, like the product's ORM activities: it runs on the same kind of thread pool.
@activity.defn(name=NOOP_ACTIVITY)
def noop(params: NoopInput) -> None:
    return None


if not workflow.unsafe.in_sandbox():
    # Registered with the worker's registry once, in the worker process; never from the sandbox's re-import.
    from temporal_bridge.registry import register

    register(BASELINE_QUEUE, workflows=[BaselineWorkflow], activities=[noop])
