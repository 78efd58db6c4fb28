"""A small workflow that drives the invitation activities the way the bootstrap does (generate, enqueue the
emails, count each delivery report once), for tests that need the fan-out without the whole bootstrap."""

import contextlib
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from invitations.payloads import (
        DELIVERY_SIGNAL,
        Activity,
        DeliveryReport,
        EnqueuedInvitationEmails,
        EnqueueInvitationEmailsInput,
        GeneratedInvitations,
        GenerateInvitationsInput,
        Invitee,
        RevokedInvitations,
        RevokePendingInvitationsInput,
    )

FANOUT_WORKFLOW = "InvitationFanOutTestWorkflow"


@dataclass
class FanOutInput:
    organization_id: str
    invitees: list[Invitee]
    invited_by_id: int | None = None
    results_timeout: float = 120.0
    revoke_after: bool = False


@dataclass
class FanOutResult:
    invitation_ids: list[str]
    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    signals: int = 0
    revoked: int = 0
    # Workflow time when the invitations existed and when the last report came (for the benchmark).
    generated_at: str = ""
    finished_at: str = ""


@workflow.defn(name=FANOUT_WORKFLOW)
class FanOutWorkflow:
    def __init__(self) -> None:
        self.expected: set[str] = set()
        self.reports: dict[str, DeliveryReport] = {}
        self.signals = 0

    @workflow.run
    async def run(self, params: FanOutInput) -> FanOutResult:
        options = {
            "start_to_close_timeout": timedelta(seconds=300),
            "retry_policy": RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=5),
        }
        generated = await workflow.execute_activity(
            Activity.GENERATE,
            GenerateInvitationsInput(params.organization_id, params.invitees, params.invited_by_id),
            result_type=GeneratedInvitations,
            **options,
        )
        self.expected = set(generated.invitation_ids)
        generated_at = workflow.now().isoformat()
        await workflow.execute_activity(
            Activity.ENQUEUE_EMAILS,
            EnqueueInvitationEmailsInput(params.organization_id, generated.invitation_ids, workflow.info().workflow_id),
            result_type=EnqueuedInvitationEmails,
            **options,
        )
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: len(self.reports) >= len(self.expected), timeout=params.results_timeout
            )
        result = FanOutResult(
            invitation_ids=generated.invitation_ids,
            sent=sorted(i for i, r in self.reports.items() if r.status == "sent"),
            failed=sorted(i for i, r in self.reports.items() if r.status != "sent"),
            missing=sorted(self.expected - self.reports.keys()),
            signals=self.signals,
            generated_at=generated_at,
            finished_at=workflow.now().isoformat(),
        )
        if params.revoke_after:
            revoked = await workflow.execute_activity(
                Activity.REVOKE_PENDING,
                RevokePendingInvitationsInput(params.organization_id, "test compensation"),
                result_type=RevokedInvitations,
                **options,
            )
            result.revoked = revoked.revoked
        return result

    @workflow.signal(name=DELIVERY_SIGNAL)
    def delivery(self, report: DeliveryReport) -> None:
        self.signals += 1
        if report.invitation_id in self.expected and report.invitation_id not in self.reports:
            self.reports[report.invitation_id] = report
