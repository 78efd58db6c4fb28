"""Workflow sandbox benchmark: what Temporal's sandbox costs per bootstrap, measured by replay.

Run from the repository root:

    .venv/bin/python bench/sandbox.py [--runs 200] [--rounds 3]

It needs no server: the SDK's Replayer runs the bootstrap workflow over a recorded history of a real run
(`tests/onboarding/histories/happy_path.json` by default: a recorded bootstrap with its local
activities, a timer and its child fan-out), `--runs` times per round, and prints ONE JSON line on stdout.

- `sandboxed_ms_per_run`: CPU per replayed bootstrap with the worker's runner (the SDK's default
  SandboxedWorkflowRunner, with `temporal_bridge.worker.WorkflowCodeCache` installed as the worker does). Each
  run builds a sandbox, imports the workflow module in it afresh and replays both workflow tasks.
- `unsandboxed_ms_per_run`: the baseline, the same replay with `UnsandboxedWorkflowRunner`.
- `ratio` = unsandboxed / sandboxed (the share of the sandboxed cost that is the workflow itself).

Best of `--rounds` rounds for each side, alternating, so a noisy neighbour hurts both alike. CPU is this process's
(`time.process_time`), over every thread.
"""

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_HISTORY = ROOT / "tests" / "onboarding" / "histories" / "happy_path.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="Replays per round.")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds per side; the best counts.")
    parser.add_argument("--history", type=Path, default=DEFAULT_HISTORY, help="A recorded bootstrap history.")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from temporalio.client import WorkflowHistory
    from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

    from onboarding.workflows import OrganizationBootstrapWorkflow
    from temporal_bridge.worker import WorkflowCodeCache

    WorkflowCodeCache.install([OrganizationBootstrapWorkflow])
    text = args.history.read_text()

    async def histories():
        for i in range(args.runs):
            yield WorkflowHistory.from_json(f"bench-{i}", text)

    def round_ms(runner) -> float:
        replayer = Replayer(
            workflows=[OrganizationBootstrapWorkflow], **({"workflow_runner": runner} if runner else {})
        )
        started = time.process_time()
        results = asyncio.run(replayer.replay_workflows(histories(), raise_on_replay_failure=True))
        assert results is not None
        return (time.process_time() - started) * 1000 / args.runs

    round_ms(None)  # warm-up: first imports
    sandboxed, unsandboxed = [], []
    for _ in range(args.rounds):
        sandboxed.append(round_ms(None))
        unsandboxed.append(round_ms(UnsandboxedWorkflowRunner()))
    best_sandboxed, best_unsandboxed = min(sandboxed), min(unsandboxed)
    print(
        json.dumps(
            {
                "benchmark": "sandbox",
                "history": args.history.name,
                "runs": args.runs,
                "sandboxed_ms_per_run": round(best_sandboxed, 2),
                "unsandboxed_ms_per_run": round(best_unsandboxed, 2),
                "ratio": round(best_unsandboxed / best_sandboxed, 3),
                "rounds_ms": {
                    "sandboxed": [round(v, 2) for v in sandboxed],
                    "unsandboxed": [round(v, 2) for v in unsandboxed],
                },
            }
        )
    )


if __name__ == "__main__":
    main()
