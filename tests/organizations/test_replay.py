"""Histories of real bootstrap runs (recorded by the workflow tests with A4C_RECORD_HISTORIES=1) replay with the
current workflow code. A change that would break running bootstraps fails here; put it behind
workflow.patched() and it passes, as the last two tests show."""

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from invitations.payloads import DELIVERY_SIGNAL, DeliveryReport
from organizations.payloads import WORKFLOW_TYPE, BootstrapInput, BootstrapResult
from organizations.workflows import OrganizationBootstrapWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())


def replay(workflow_class: type, path: Path) -> None:
    asyncio.run(Replayer(workflows=[workflow_class]).replay_workflow(load(path)))


SCENARIOS = {
    "happy_path",
    "dns_configuration_failed",
    "dns_quorum_not_reached",
    "cancelled",
    "dns_recheck_signal",
    "retried_run",
}


@pytest.mark.parametrize("generation", ["v1", "v2", "v3", "v4", "v5", "v7"])
def test_recorded_histories_cover_success_failure_cancel_and_retry(generation):
    """v1: regular activities only; v2: short steps as local activities (patch local-activities-for-short-steps);
    v3: the invitation steps as local activities for short invitee lists only (patch activity-kind-by-invitee-count);
    v4: a cancel waits for the running step's activity (patch wait-for-cancelled-steps); v5: compensation steps
    bounded by a workflow timer (patch bounded-compensation-steps); v6 (two scenarios only): early and other
    attempts' delivery reports (patches keep-early-delivery-reports, ignore-other-attempts-reports); v7: compensation
    outlasts a cancel (patch compensation-outlasts-cancel)."""
    assert {p.stem for p in HISTORIES} >= {f"{generation}_{s}" for s in SCENARIOS}


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
        replay(UnpatchedChange, Path(__file__).parent / "histories" / "v1_happy_path.json")


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
def test_the_same_change_behind_a_patch_replays(path):
    replay(PatchedChange, path)


# Each fix below changed what a run does in one situation, behind a patch; its recorded history is replayed faithfully
# only by code that takes the patched path (the old code, on the right, diverges from it).


@workflow.defn(name=WORKFLOW_TYPE)
class DropsEarlyReports(OrganizationBootstrapWorkflow):
    """Before keep-early-delivery-reports: a report that comes before the invitations are listed is dropped."""

    @workflow.run
    async def run(self, params: BootstrapInput) -> BootstrapResult:
        return await super().run(params)

    @workflow.signal(name=DELIVERY_SIGNAL)
    def invitation_delivery(self, report: DeliveryReport) -> None:
        if self._invitations_listed:
            self._record_delivery(report)


@workflow.defn(name=WORKFLOW_TYPE)
class CountsOtherAttemptsReports(OrganizationBootstrapWorkflow):
    """Before ignore-other-attempts-reports: a report from another bootstrap attempt counts."""

    @workflow.run
    async def run(self, params: BootstrapInput) -> BootstrapResult:
        self._ignores_other_attempts = False
        return await super().run(params)


@workflow.defn(name=WORKFLOW_TYPE)
class CancelCutsCompensationShort(OrganizationBootstrapWorkflow):
    """Before compensation-outlasts-cancel: a cancel interrupts the compensation under way."""

    @workflow.run
    async def run(self, params: BootstrapInput) -> BootstrapResult:
        return await super().run(params)

    async def _compensate_to_the_end(self, failed_step: str, message: str) -> None:
        await self._compensate(failed_step, message)


@pytest.mark.parametrize(
    ("history", "old_code"),
    [
        ("v6_early_delivery_report", DropsEarlyReports),
        ("v6_report_from_another_attempt", CountsOtherAttemptsReports),
        ("v7_cancel_during_compensation", CancelCutsCompensationShort),
    ],
)
def test_a_fixs_history_takes_the_patched_path(history, old_code):
    path = Path(__file__).parent / "histories" / f"{history}.json"
    replay(OrganizationBootstrapWorkflow, path)
    with pytest.raises(NondeterminismError):
        replay(old_code, path)
