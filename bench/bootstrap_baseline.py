"""The baseline workflow of bench/bootstrap.py: N no-op activities, one timer and, where the bootstrap runs its
invitation fan-out as a child workflow, a bare child workflow running that child's share of the no-ops.

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
BASELINE_CHILD_WORKFLOW = "BenchBaselineChildWorkflow"
NOOP_ACTIVITY = "bench.noop"


@dataclass
class BaselineInput:
    activities: int
    timer_seconds: float
    timer_after: int  # how many activities run before the timer (the bootstrap's wait comes after two)
    activity_timeout: float = 600.0
    # Of `activities`, how many a bare child workflow runs, started after `child_after` of the parent's (the
    # bootstrap's fan-out comes after create, configure and verify); 0: no child.
    child_activities: int = 0
    child_after: int = 3


@dataclass
class ChildInput:
    activities: int
    activity_timeout: float = 600.0


@dataclass
class NoopInput:
    step: int


async def _noop(step: int, timeout: float) -> None:
    await workflow.execute_activity(
        NOOP_ACTIVITY,
        NoopInput(step),
        start_to_close_timeout=timedelta(seconds=timeout),
        # The bootstrap's activity retry policy, so both sides schedule the same commands.
        retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30), maximum_attempts=5),
    )


@workflow.defn(name=BASELINE_CHILD_WORKFLOW)
class BaselineChildWorkflow:
    @workflow.run
    async def run(self, params: ChildInput) -> int:
        for step in range(params.activities):
            await _noop(step, params.activity_timeout)
        return params.activities


@workflow.defn(name=BASELINE_WORKFLOW)
class BaselineWorkflow:
    @workflow.run
    async def run(self, params: BaselineInput) -> int:
        for step in range(params.activities - params.child_activities):
            if step == params.timer_after:
                await workflow.sleep(timedelta(seconds=params.timer_seconds))
            if params.child_activities and step == params.child_after:
                await workflow.execute_child_workflow(
                    BASELINE_CHILD_WORKFLOW,
                    ChildInput(activities=params.child_activities, activity_timeout=params.activity_timeout),
                    id=f"{workflow.info().workflow_id}-child",
                    task_queue=workflow.info().task_queue,
                )
            await _noop(step, params.activity_timeout)
        return params.activities


# Synchronous, like the product's ORM activities: it runs on the same kind of thread pool.
@activity.defn(name=NOOP_ACTIVITY)
def noop(params: NoopInput) -> None:
    return None


if not workflow.unsafe.in_sandbox():
    # Registered with the worker's registry once, in the worker process; never from the sandbox's re-import.
    from temporal_bridge.registry import register

    register(BASELINE_QUEUE, workflows=[BaselineWorkflow, BaselineChildWorkflow], activities=[noop])
