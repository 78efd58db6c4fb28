"""Histories of real bootstrap runs (recorded by the workflow tests with A4C_RECORD_HISTORIES=1) replay with the
current workflow code: the gate for every change to the workflow. A change to its command sequence without a patch
fails here; behind workflow.patched() it passes, as the last two tests show (docs/workflows.md, "Changing workflows
safely")."""

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from onboarding.payloads import WORKFLOW_TYPE, BootstrapInput, BootstrapResult
from onboarding.workflows import OrganizationBootstrapWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))

SCENARIOS = {
    "happy_path",
    "dns_configuration_failed",
    "dns_quorum_not_reached",
    "cancelled",
    "cancelled_during_a_step",
    "cancel_during_compensation",
    "dns_recheck_signal",
    "retried_run",
    "big_invitee_list_cancelled",
}


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())


def replay(workflow_class: type, path: Path) -> None:
    asyncio.run(Replayer(workflows=[workflow_class]).replay_workflow(load(path)))


def test_recorded_histories_cover_success_failure_cancel_retry_and_a_big_fan_out():
    assert {p.stem for p in HISTORIES} >= SCENARIOS


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
def test_a_recorded_history_replays_with_the_current_code(path):
    replay(OrganizationBootstrapWorkflow, path)


@workflow.defn(name=WORKFLOW_TYPE)
class UnpatchedChange(OrganizationBootstrapWorkflow):
    """A next version that waits a moment before activating, without a patch."""

    @workflow.run
    async def run(self, params: BootstrapInput) -> BootstrapResult:
        return await super().run(params)

    async def _activate(self, state):
        await workflow.sleep(timedelta(milliseconds=1))
        await super()._activate(state)


@workflow.defn(name=WORKFLOW_TYPE)
class PatchedChange(OrganizationBootstrapWorkflow):
    """The same change behind workflow.patched(): old runs keep the old path."""

    @workflow.run
    async def run(self, params: BootstrapInput) -> BootstrapResult:
        return await super().run(params)

    async def _activate(self, state):
        if workflow.patched("pause-before-activation"):
            await workflow.sleep(timedelta(milliseconds=1))
        await super()._activate(state)


def test_an_unpatched_change_breaks_replay():
    with pytest.raises(NondeterminismError):
        replay(UnpatchedChange, Path(__file__).parent / "histories" / "happy_path.json")


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
def test_the_same_change_behind_a_patch_replays(path):
    replay(PatchedChange, path)
