"""Histories of real invitation runs replay with the current workflow code: each invitation's lifecycle (recorded by
the lifecycle tests) and the email fan-out (recorded by the bootstrap and fan-out tests), with A4C_RECORD_HISTORIES=1.
A change to either workflow's command sequence without a patch fails here (docs/workflows.md)."""

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from invitations.payloads import DELIVERY_WORKFLOW_TYPE, InvitationDeliveryInput, InvitationDeliveryResult
from invitations.workflows import InvitationDeliveryWorkflow, UserInvitationWorkflow

HISTORIES = Path(__file__).parent / "histories"
LIFECYCLES = sorted(HISTORIES.glob("lifecycle_*.json"))
FAN_OUTS = sorted(HISTORIES.glob("delivery_*.json"))


def replay(workflow_class: type, path: Path) -> None:
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    asyncio.run(Replayer(workflows=[workflow_class]).replay_workflow(history))


def test_recorded_histories_cover_accept_remind_expire_resend_revoke_and_fan_outs():
    assert {p.stem for p in LIFECYCLES} >= {
        "lifecycle_accepted",
        "lifecycle_reminded_then_expired",
        "lifecycle_resent_then_revoked",
    }
    assert {p.stem for p in FAN_OUTS} >= {"delivery_happy_path", "delivery_big_fan_out"}


@pytest.mark.parametrize("path", LIFECYCLES, ids=lambda p: p.stem)
def test_a_recorded_lifecycle_replays_with_the_current_code(path):
    replay(UserInvitationWorkflow, path)


@pytest.mark.parametrize("path", FAN_OUTS, ids=lambda p: p.stem)
def test_a_recorded_fan_out_replays_with_the_current_code(path):
    replay(InvitationDeliveryWorkflow, path)


@workflow.defn(name=DELIVERY_WORKFLOW_TYPE)
class UnpatchedFanOutChange(InvitationDeliveryWorkflow):
    """A next version that pauses between generating and enqueueing, without a patch."""

    @workflow.run
    async def run(self, params: InvitationDeliveryInput) -> InvitationDeliveryResult:
        return await super().run(params)

    async def _activity(self, params, name, arg, result_type, *, local):
        await workflow.sleep(timedelta(milliseconds=1))
        return await super()._activity(params, name, arg, result_type, local=local)


def test_an_unpatched_fan_out_change_breaks_replay():
    with pytest.raises(NondeterminismError):
        replay(UnpatchedFanOutChange, HISTORIES / "delivery_happy_path.json")
