"""Histories of real invitation runs replay with the current UserInvitationWorkflow. v1: started awake, the
reminder timer set at the first task; v2: started asleep until the first deadline, woken by signal-with-start.
Record new ones (with a new prefix) from real runs whenever the workflow's commands change."""

import asyncio
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from invitations.workflows import UserInvitationWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
SCENARIOS = {"accepted", "reminded_then_expired", "resent_then_revoked"}


@pytest.mark.parametrize("generation", ["v1", "v2"])
def test_recorded_histories_cover_accept_remind_expire_resend_and_revoke(generation):
    assert {p.stem for p in HISTORIES} >= {f"{generation}_{s}" for s in SCENARIOS}


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
def test_a_recorded_history_replays_with_the_current_code(path):
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    asyncio.run(Replayer(workflows=[UserInvitationWorkflow]).replay_workflow(history))
