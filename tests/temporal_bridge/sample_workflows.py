"""A small workflow for the bridge's tests. Like every workflow module: no Django."""

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy


@dataclass
class SampleInput:
    stream_id: str
    steps: int = 1
    sleep: float = 0.0


@dataclass
class RecordInput:
    stream_id: str
    step: int
    sleep: float = 0.0


@dataclass
class RecordResult:
    thread: str
    backend_pid: int
    position: int


@workflow.defn(name="SampleWorkflow")
class SampleWorkflow:
    def __init__(self) -> None:
        self.proceed = False

    @workflow.run
    async def run(self, params: SampleInput) -> list[RecordResult]:
        results = []
        for step in range(1, params.steps + 1):
            results.append(
                await workflow.execute_activity(
                    "sample.record",
                    RecordInput(params.stream_id, step, params.sleep),
                    result_type=RecordResult,
                    start_to_close_timeout=timedelta(seconds=60),
                    retry_policy=RetryPolicy(maximum_attempts=3, initial_interval=timedelta(milliseconds=100)),
                )
            )
        return results

    @workflow.signal
    def go(self) -> None:
        self.proceed = True
