"""Histories of real invitation runs replay with the current UserInvitationWorkflow. v1: started awake, the
reminder timer set at the first task; v2: started asleep until the first deadline, woken by signal-with-start
(patch deadlines-from-start). v1_late_first_task_then_resent is v1_resent_then_revoked with its times moved: the
first task ran 10 s after the start, and the resend came between start + reminder delay and first task + reminder
delay, where timing the reminder from the start would decide differently. Record new ones (with a new prefix)
from real runs whenever the workflow's commands change."""

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
