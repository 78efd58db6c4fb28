"""The invitation workflows: the email fan-out (InvitationDeliveryWorkflow), each invitation's lifecycle
(UserInvitationWorkflow) and the scheduled sweep of stranded deliveries.

Like every workflow module this imports no Django: only temporalio, the standard library and payloads.
Acceptance is carried out by the accept view's transaction (the password must never enter Temporal); the
lifecycle workflow then runs the same idempotent check-then-act without the password, as the durable guarantee
that an accepted invitation ends with its account holding the role.
"""

import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from invitations.payloads import (
        ACCEPTED_SIGNAL,
        DECLINED_SIGNAL,
        DELIVERY_SIGNAL,
        DELIVERY_STATE_QUERY,
        DELIVERY_SWEEP_WORKFLOW_TYPE,
        DELIVERY_WORKFLOW_TYPE,
        INVITATION_STATE_QUERY,
        INVITATION_WORKFLOW_TYPE,
        RESENT_SIGNAL,
        REVOKED_SIGNAL,
        DeliveryReport,
        DeliveryStatus,
        DeliverySweepInput,
        DeliverySweepResult,
        EnqueuedInvitationEmails,
        EnqueueInvitationEmailsInput,
        ExpireInput,
        ExpireResult,
        GeneratedInvitations,
        GenerateInvitationsInput,
        InvitationAccepted,
        InvitationActivity,
        InvitationClosed,
        InvitationDeliveryInput,
        InvitationDeliveryResult,
        InvitationOutcome,
        InvitationResent,
        InvitationState,
        InvitationStatus,
        Provisioned,
        ProvisionInput,
        Reminded,
        RemindInput,
        UserInvitationInput,
    )
    from organizations.payloads import InvitationCounts

# Up to this many invitees, generating and enqueueing run as local activities (no task of their own); a bigger list
# takes longer than a workflow task may, and a local activity that outlives its task is retried from scratch.
LOCAL_MAX_INVITEES = 20
# Reports kept for invitations this run has not listed yet (a replay can deliver a signal before the step's result):
# Temporal's default limit of signals per run.
MAX_REPORTS = 10_000


@workflow.defn(name=DELIVERY_WORKFLOW_TYPE)
class InvitationDeliveryWorkflow:
    """Generates the invitations, enqueues one Celery email task each, and waits for each task's report (deduplicated,
    counted once; a later success replaces a failure) until all are in or the results timeout ends."""

    def __init__(self) -> None:
        self._expected: set[str] | None = None  # None until the invitations are generated
        self._reports: dict[str, DeliveryReport] = {}
        self._signals = 0
        self._final: InvitationCounts | None = None

    @workflow.run
    async def run(self, params: InvitationDeliveryInput) -> InvitationDeliveryResult:
        local = len(params.invitees) <= LOCAL_MAX_INVITEES
        generated = await self._activity(
            params,
            InvitationActivity.GENERATE,
            GenerateInvitationsInput(
                organization_id=params.organization_id,
                invitees=params.invitees,
                scope=params.scope,
                invited_by_id=params.invited_by_id,
                bootstrap_workflow_id=parent.workflow_id if (parent := workflow.info().parent) else "",
            ),
            GeneratedInvitations,
            local=local,
        )
        self._expected = set(generated.invitation_ids)
        if generated.invitation_ids:
            enqueued = await self._activity(
                params,
                InvitationActivity.ENQUEUE_EMAILS,
                EnqueueInvitationEmailsInput(
                    organization_id=params.organization_id, invitation_ids=generated.invitation_ids, scope=params.scope
                ),
                EnqueuedInvitationEmails,
                local=local,
            )
            for report in enqueued.settled:
                self._record(report)
            # Results still missing when the wait ends count as failures.
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._expected is not None and self._expected <= self._reports.keys(),
                    timeout=timedelta(seconds=params.results_timeout),
                )
        unreported = sorted(self._expected - self._reports.keys())
        counts = self.final_counts()
        emails = workflow.metric_meter().create_counter(
            "a4c_invitation_emails", "Invitation emails of fan-outs, by result when the fan-out counted them."
        )
        emails.add(counts.sent, {"result": "sent"})
        emails.add(counts.failed, {"result": "failed"})
        return InvitationDeliveryResult(
            invitation_ids=generated.invitation_ids,
            counts=counts,
            unreported_invitation_ids=unreported,
            signals=self._signals,
        )

    @workflow.signal(name=DELIVERY_SIGNAL)
    def invitation_delivery(self, report: DeliveryReport) -> None:
        self._signals += 1
        self._record(report)

    @workflow.query(name=DELIVERY_STATE_QUERY)
    def state(self) -> InvitationCounts:
        return self._final or self.counts()

    def _record(self, report: DeliveryReport) -> None:
        # After the final count (the wait timed out) nothing changes: that count is what was returned.
        if self._final is not None:
            return
        if self._expected is not None and report.invitation_id not in self._expected:
            return
        if report.invitation_id not in self._reports and len(self._reports) >= MAX_REPORTS:
            return
        previous = self._reports.get(report.invitation_id)
        if previous is None or (previous.status != DeliveryStatus.SENT and report.status == DeliveryStatus.SENT):
            self._reports[report.invitation_id] = report

    def counts(self) -> InvitationCounts:
        expected = self._expected or set()
        reported = {i: r for i, r in self._reports.items() if i in expected}
        failed = sorted(i for i, r in reported.items() if r.status != DeliveryStatus.SENT)
        return InvitationCounts(
            total=len(expected),
            sent=len(reported) - len(failed),
            failed=len(failed),
            pending=len(expected) - len(reported),
            failed_invitation_ids=failed,
        )

    def final_counts(self) -> InvitationCounts:
        """The counts once the wait is over: every invitation still without a report counts as failed."""
        counts = self.counts()
        missing = sorted((self._expected or set()) - self._reports.keys())
        self._final = InvitationCounts(
            total=counts.total,
            sent=counts.sent,
            failed=counts.failed + len(missing),
            pending=0,
            failed_invitation_ids=counts.failed_invitation_ids + missing,
        )
        return self._final

    async def _activity(self, params: InvitationDeliveryInput, name: str, arg, result_type, *, local: bool):
        execute = workflow.execute_local_activity if local else workflow.execute_activity
        return await execute(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=timedelta(seconds=params.activity_timeout),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=params.activity_retry_initial_interval),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(seconds=30),
                maximum_attempts=params.activity_max_attempts,
            ),
            # A cancel waits for a step under way, so whoever compensates finds what it wrote.
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )


@workflow.defn(name=INVITATION_WORKFLOW_TYPE)
class UserInvitationWorkflow:
    def __init__(self) -> None:
        self._accepted_by: int | None = None
        # Set once the invitation is closed: by a signal, or found closed in the projection (a lost signal).
        self._closed: InvitationStatus | None = None
        self._deadline_moved = False
        self._expires_at: datetime | None = None
        self._reminded = False
        self._invitation_id = ""

    @workflow.run
    async def run(self, params: UserInvitationInput) -> InvitationOutcome:
        self._invitation_id = params.invitation_id
        expires_at = datetime.fromisoformat(params.expires_at)
        # A resend that woke this run was handled before run() began: keep its later deadline.
        self._expires_at = max(expires_at, self._expires_at) if self._expires_at else expires_at
        # From the start, not from the first task: a run is started asleep until its first deadline (see
        # invitations.lifecycle), unless a signal wakes it sooner.
        remind_at = workflow.info().workflow_start_time + timedelta(seconds=params.timings.reminder_delay)
        while self._closed is None:
            now = workflow.now()
            remind = not self._reminded and remind_at < self._expires_at
            due = remind_at if remind else self._expires_at
            self._deadline_moved = False
            if due > now:
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        lambda: self._closed is not None or self._deadline_moved,
                        timeout=(due - now).total_seconds(),
                    )
                continue  # woken by a signal or the timer: decide again from the top
            if remind:
                self._reminded = True
                reminded = await self._activity(
                    InvitationActivity.REMIND, RemindInput(invitation_id=params.invitation_id), Reminded, params
                )
                if reminded.status != InvitationStatus.PENDING:
                    self._settle(reminded.status, reminded.accepted_by_id)
                continue
            result = await self._activity(
                InvitationActivity.EXPIRE, ExpireInput(invitation_id=params.invitation_id), ExpireResult, params
            )
            if result.status != InvitationStatus.PENDING:
                self._settle(result.status, result.accepted_by_id)
                break
            moved = datetime.fromisoformat(result.expires_at)
            if moved > self._expires_at:
                # A resend moved the deadline and its signal is still on the way.
                self._expires_at = moved
            else:
                # The database's clock is behind the timer's; ask again shortly.
                await workflow.sleep(1)

        if self._closed == InvitationStatus.ACCEPTED and self._accepted_by is not None:
            await self._activity(
                InvitationActivity.PROVISION,
                ProvisionInput(invitation_id=params.invitation_id, user_id=self._accepted_by),
                Provisioned,
                params,
            )
        return InvitationOutcome(invitation_id=self._invitation_id, status=self._closed, user_id=self._accepted_by)

    def _settle(self, status: InvitationStatus, accepted_by: int | None) -> None:
        """The projection says the invitation was closed without this workflow being told (a lost signal)."""
        if status == InvitationStatus.ACCEPTED and accepted_by is not None:
            self._accepted_by = accepted_by
        self._closed = status

    async def _activity(self, name: str, arg, result_type, params: UserInvitationInput):
        t = params.timings
        return await workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=timedelta(seconds=t.activity_timeout),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=t.retry_initial_interval),
                maximum_interval=timedelta(seconds=t.retry_max_interval),
            ),
        )

    def _close(self, status: InvitationStatus) -> None:
        if self._closed is None:
            self._closed = status

    @workflow.signal(name=ACCEPTED_SIGNAL)
    def accepted(self, signal: InvitationAccepted) -> None:
        if self._closed is None:
            self._accepted_by = signal.user_id
        self._close(InvitationStatus.ACCEPTED)

    @workflow.signal(name=DECLINED_SIGNAL)
    def declined(self, signal: InvitationClosed) -> None:
        self._close(InvitationStatus.DECLINED)

    @workflow.signal(name=REVOKED_SIGNAL)
    def revoked(self, signal: InvitationClosed) -> None:
        self._close(InvitationStatus.REVOKED)

    @workflow.signal(name=RESENT_SIGNAL)
    def resent(self, signal: InvitationResent) -> None:
        self._expires_at = datetime.fromisoformat(signal.expires_at)
        self._deadline_moved = True

    @workflow.query(name=INVITATION_STATE_QUERY)
    def state(self) -> InvitationState:
        return InvitationState(
            invitation_id=self._invitation_id,
            status=self._closed or InvitationStatus.PENDING,
            expires_at=self._expires_at.isoformat() if self._expires_at else "",
            reminded=self._reminded,
            user_id=self._accepted_by,
        )


@workflow.defn(name=DELIVERY_SWEEP_WORKFLOW_TYPE)
class DeliverySweepWorkflow:
    """Started by a Temporal schedule (DELIVERY_SWEEP_SCHEDULE_ID): publishes again the invitation emails whose
    Celery task never got to the broker, so a broker outage at the wrong moment cannot strand one for good."""

    @workflow.run
    async def run(self, params: DeliverySweepInput | None = None) -> DeliverySweepResult:
        return await workflow.execute_local_activity(
            InvitationActivity.REQUEUE_STALE_DELIVERIES,
            DeliverySweepInput(),
            result_type=DeliverySweepResult,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=RetryPolicy(maximum_attempts=3),  # the next sweep comes anyway
        )
