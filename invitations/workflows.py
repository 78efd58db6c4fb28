"""UserInvitationWorkflow: one per invitation, from creation until accepted, declined, revoked or expired.

Like every workflow module it imports no Django: only temporalio, the standard library and payloads.
Acceptance is carried out by the accept view's transaction (the password must never enter Temporal); the
workflow then runs the same idempotent check-then-act without the password, as the durable guarantee that
an accepted invitation ends with its account holding the role.
"""

import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from invitations.payloads import (
        ACCEPTED_SIGNAL,
        DECLINED_SIGNAL,
        DELIVERY_SWEEP_WORKFLOW_TYPE,
        INVITATION_STATE_QUERY,
        INVITATION_WORKFLOW_TYPE,
        RESENT_SIGNAL,
        REVOKED_SIGNAL,
        DeliverySweepResult,
        ExpireInput,
        ExpireResult,
        InvitationAccepted,
        InvitationClosed,
        InvitationOutcome,
        InvitationResent,
        InvitationState,
        LifecycleActivity,
        Provisioned,
        ProvisionInput,
        Reminded,
        RemindInput,
        UserInvitationInput,
    )


# Runs started asleep (with a start delay) time the reminder from the start and keep a deadline moved by a resend
# that woke them. Runs started before this patch were awake from the start and timed it from their first task.
DEADLINES_FROM_START_PATCH = "deadlines-from-start"


@workflow.defn(name=INVITATION_WORKFLOW_TYPE)
class UserInvitationWorkflow:
    def __init__(self) -> None:
        self._status = "pending"
        self._accepted_by: int | None = None
        self._closed_by_signal: str | None = None
        self._deadline_moved = False
        self._expires_at: datetime | None = None
        self._reminded = False
        self._invitation_id = ""

    @workflow.run
    async def run(self, params: UserInvitationInput) -> InvitationOutcome:
        self._invitation_id = params.invitation_id
        expires_at = datetime.fromisoformat(params.expires_at)
        reminder_delay = timedelta(seconds=params.timings.reminder_delay)
        if workflow.patched(DEADLINES_FROM_START_PATCH):
            # A resend that woke this run was handled before run() began: keep its later deadline.
            self._expires_at = max(expires_at, self._expires_at) if self._expires_at else expires_at
            # From the start, not from the first task: a run is started asleep until its first deadline (see
            # invitations.services._lifecycle_send_rollback_unsafe), unless a signal wakes it sooner.
            remind_at = workflow.info().workflow_start_time + reminder_delay
        else:
            self._expires_at = expires_at
            remind_at = workflow.now() + reminder_delay
        while self._closed_by_signal is None:
            now = workflow.now()
            remind = not self._reminded and remind_at < self._expires_at
            due = remind_at if remind else self._expires_at
            self._deadline_moved = False
            if due > now:
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        lambda: self._closed_by_signal is not None or self._deadline_moved,
                        timeout=(due - now).total_seconds(),
                    )
                continue  # woken by a signal or the timer: decide again from the top
            if remind:
                self._reminded = True
                reminded = await self._activity(
                    LifecycleActivity.REMIND, RemindInput(params.invitation_id), Reminded, params
                )
                if reminded.status != "pending":
                    self._settle(reminded.status, reminded.accepted_by_id)
                continue
            result = await self._activity(
                LifecycleActivity.EXPIRE, ExpireInput(params.invitation_id), ExpireResult, params
            )
            if result.status != "pending":
                self._settle(result.status, result.accepted_by_id)
                break
            moved = datetime.fromisoformat(result.expires_at)
            if moved > self._expires_at:
                # A resend moved the deadline and its signal is still on the way.
                self._expires_at = moved
            else:
                # The database's clock is behind the timer's; ask again shortly.
                await workflow.sleep(1)

        if self._closed_by_signal == "accepted" and self._accepted_by is not None:
            await self._activity(
                LifecycleActivity.PROVISION,
                ProvisionInput(params.invitation_id, self._accepted_by),
                Provisioned,
                params,
            )
        self._status = self._closed_by_signal or self._status
        return self._outcome()

    def _settle(self, status: str, accepted_by: int | None) -> None:
        """The projection says the invitation was closed without this workflow being told (a lost signal)."""
        self._status = status
        if status == "accepted" and accepted_by is not None:
            self._accepted_by = accepted_by
        self._closed_by_signal = status

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
                non_retryable_error_types=["InvalidInvitationData"],
            ),
        )

    def _outcome(self) -> InvitationOutcome:
        return InvitationOutcome(self._invitation_id, self._status, self._accepted_by)

    @workflow.signal(name=ACCEPTED_SIGNAL)
    def accepted(self, signal: InvitationAccepted) -> None:
        if self._closed_by_signal is None:
            self._accepted_by = signal.user_id
            self._closed_by_signal = "accepted"

    @workflow.signal(name=DECLINED_SIGNAL)
    def declined(self, signal: InvitationClosed) -> None:
        if self._closed_by_signal is None:
            self._closed_by_signal = "declined"

    @workflow.signal(name=REVOKED_SIGNAL)
    def revoked(self, signal: InvitationClosed) -> None:
        if self._closed_by_signal is None:
            self._closed_by_signal = "revoked"

    @workflow.signal(name=RESENT_SIGNAL)
    def resent(self, signal: InvitationResent) -> None:
        self._expires_at = datetime.fromisoformat(signal.expires_at)
        self._deadline_moved = True

    @workflow.query(name=INVITATION_STATE_QUERY)
    def state(self) -> InvitationState:
        return InvitationState(
            invitation_id=self._invitation_id,
            status=self._closed_by_signal or self._status,
            expires_at=self._expires_at.isoformat() if self._expires_at else "",
            reminded=self._reminded,
            user_id=self._accepted_by,
        )


@workflow.defn(name=DELIVERY_SWEEP_WORKFLOW_TYPE)
class DeliverySweepWorkflow:
    """Started by a Temporal schedule (DELIVERY_SWEEP_SCHEDULE_ID): publishes again the invitation emails whose
    Celery task never got to the broker, so a broker outage at the wrong moment cannot strand one for good."""

    @workflow.run
    async def run(self) -> DeliverySweepResult:
        return await workflow.execute_local_activity(
            LifecycleActivity.REQUEUE_STALE_DELIVERIES,
            result_type=DeliverySweepResult,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=RetryPolicy(maximum_attempts=3),  # the next sweep comes anyway
        )
