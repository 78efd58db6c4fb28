"""The organization bootstrap workflow.

create organization → configure DNS → durable wait for propagation → verify DNS → generate invitations →
send invitation emails → activate. When a step fails for good, or support cancels, it compensates (remove
DNS, revoke invitations, mark the organization failed) and ends as failed.

Workflow code must be deterministic: no Django, no I/O, no clocks but workflow.now(). Activities are called
by name with the typed payloads they share with their implementations.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from types import NoneType
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from invitations.payloads import (
        DELIVERY_SIGNAL,
        DeliveryReport,
        DeliveryStatus,
        EnqueuedInvitationEmails,
        EnqueueInvitationEmailsInput,
        GeneratedInvitations,
        GenerateInvitationsInput,
        RevokedInvitations,
        RevokePendingInvitationsInput,
    )
    from invitations.payloads import Activity as InvitationActivity
    from organizations.payloads import (
        RECHECK_DNS_SIGNAL,
        STATE_QUERY,
        WORKFLOW_TYPE,
        ActivateOrganizationInput,
        Activity,
        BootstrapInput,
        BootstrapResult,
        BootstrapState,
        CompensationStep,
        ConfigureDnsInput,
        CreatedOrganization,
        CreateOrganizationInput,
        DnsDetails,
        DnsVerification,
        InvitationCounts,
        MarkFailedInput,
        RecordInvitationsSentInput,
        RemoveDnsInput,
        Step,
        StepState,
        StepStatus,
        VerifyDnsInput,
    )

T = TypeVar("T")

# Short database and DNS steps run as local activities: no task queue round trip, no history events of their
# own, no extra workflow task per completion (about half the server and worker CPU of a bootstrap). Runs
# started before this change keep regular activities, so their histories replay.
LOCAL_ACTIVITIES_PATCH = "local-activities-for-short-steps"
# The invitation steps (generate, enqueue, revoke) work per invitee: quick for a few, long for a big list,
# which must be a regular activity (a local one that outlives its workflow task is retried from scratch while
# signals pile up). Runs started before this patch ran generate always as a regular activity, the others always
# as local ones.
INVITEE_COUNT_PATCH = "activity-kind-by-invitee-count"
LOCAL_MAX_INVITEES = 20
# A cancel that arrives while a step's activity runs waits for that activity to end before compensating: it may
# still commit (an organization created after compensation looked for it would stay pending, holding its
# subdomain). Runs started before this patch compensated at once.
WAIT_FOR_CANCELLED_STEPS_PATCH = "wait-for-cancelled-steps"
# A compensation step (DNS removal, revoking invitations) retries without an attempt limit for at most
# compensation_step_timeout, timed by the workflow: a provider that stays down must not hold back the steps
# after it. Runs started before this patch had no such timer.
BOUNDED_COMPENSATION_PATCH = "bounded-compensation-steps"
# A delivery report can reach the run before it has listed its invitations: when a workflow task times out while
# the invitation steps run (an overloaded worker), the next attempt replays the report's signal before the results
# of those local activities. Such reports are kept until the list is known; runs before this patch dropped them
# (and, each report being sent once, waited out the email timeout and counted the email failed).
EARLY_REPORTS_PATCH = "keep-early-delivery-reports"
MAX_EARLY_REPORTS = 10_000  # Temporal's own default limit of signals per run
# A retried bootstrap is a new run of the same workflow id, so an earlier attempt's email that finishes late reports
# to it, and may name the same (still pending) invitation. Reports now carry their bootstrap attempt, and another
# attempt's are not counted; runs before this patch counted them (a late "sent" could hide this run's failure).
OTHER_ATTEMPT_REPORTS_PATCH = "ignore-other-attempts-reports"
# Compensation runs to its end even if support cancels meanwhile (the run is still running, so the admin offers
# Cancel): interrupted, it left the DNS record or the invitations behind, or ended the run cancelled before the
# organization was marked failed, pending for good. Runs before this patch let the cancel through.
SHIELDED_COMPENSATION_PATCH = "compensation-outlasts-cancel"


class _StepFailed(Exception):
    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step, self.message = step, message


class _Cancelled(Exception):
    def __init__(self, step: str) -> None:
        super().__init__(step)
        self.step = step


# A regular activity's failure arrives as ActivityError wrapping the activity's error; a local activity's as
# that error itself.
ACTIVITY_FAILURES = (ActivityError, ApplicationError)


def _describe(err: BaseException) -> str:
    """The innermost message of an activity failure, which is the one a person can act on."""
    while isinstance(err, ActivityError) and err.cause is not None:
        err = err.cause
    return getattr(err, "message", None) or str(err) or type(err).__name__


def _application_error(err: BaseException) -> ApplicationError | None:
    while isinstance(err, ActivityError):
        err = err.cause
    return err if isinstance(err, ApplicationError) else None


def _retryable(err: BaseException) -> bool:
    cause = _application_error(err)
    return not (cause is not None and cause.non_retryable)


@workflow.defn(name=WORKFLOW_TYPE)
class OrganizationBootstrapWorkflow:
    @workflow.init
    def __init__(self, params: BootstrapInput) -> None:
        self._params = params
        self._state = BootstrapState(
            organization_id=params.organization_id,
            attempt=params.attempt,
            status="running",
            current_step=Step.CREATE_ORGANIZATION,
            steps=[StepState(name=step) for step in Step],
        )
        self._recheck_requested = False
        self._local_activities = False
        self._wait_for_cancelled_steps = False
        self._compensating = False
        self._expected_invitations: set[str] = set()
        self._invitations_listed = False
        self._early_reports: list[DeliveryReport] | None = None  # None until the first one, then per the patch
        self._ignores_other_attempts: bool | None = None  # decided (by the patch) at the first such report
        self._reports: dict[str, DeliveryReport] = {}
        self._failed_reports: set[str] = set()  # kept as reports come, so a signal costs O(1), not O(invitees)
        self._results_final = False
        self._dns_configured_at: datetime | None = None

    # --- Messages ---------------------------------------------------------------------------------------

    @workflow.query(name=STATE_QUERY)
    def state(self) -> BootstrapState:
        return self._state

    @workflow.signal(name=RECHECK_DNS_SIGNAL)
    def recheck_dns(self) -> None:
        """Support asks for a DNS check now instead of after the current wait."""
        self._recheck_requested = True

    @workflow.signal(name=DELIVERY_SIGNAL)
    def invitation_delivery(self, report: DeliveryReport) -> None:
        if not self._invitations_listed:
            if self._early_reports is None:
                self._early_reports = [] if workflow.patched(EARLY_REPORTS_PATCH) else None
            if self._early_reports is not None and len(self._early_reports) < MAX_EARLY_REPORTS:
                self._early_reports.append(report)
            return
        self._record_delivery(report)

    def _record_delivery(self, report: DeliveryReport) -> None:
        # Signals may repeat and may come from an earlier attempt's tasks: count each expected invitation
        # once, letting a later success replace a failure (support resent it).
        # A report after the final count (the wait timed out) changes nothing: that count is what was recorded.
        if report.invitation_id not in self._expected_invitations or self._results_final:
            return
        if report.bootstrap_attempt not in (0, self._params.attempt):
            if self._ignores_other_attempts is None:
                self._ignores_other_attempts = workflow.patched(OTHER_ATTEMPT_REPORTS_PATCH)
            if self._ignores_other_attempts:
                return
        previous = self._reports.get(report.invitation_id)
        if previous is None or (previous.status != DeliveryStatus.SENT and report.status == DeliveryStatus.SENT):
            self._reports[report.invitation_id] = report
            if report.status == DeliveryStatus.SENT:
                self._failed_reports.discard(report.invitation_id)
            else:
                self._failed_reports.add(report.invitation_id)
            self._count_invitations()

    # --- The run ----------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, params: BootstrapInput) -> BootstrapResult:
        self._local_activities = workflow.patched(LOCAL_ACTIVITIES_PATCH)
        self._wait_for_cancelled_steps = workflow.patched(WAIT_FOR_CANCELLED_STEPS_PATCH)
        try:
            created = await self._step(Step.CREATE_ORGANIZATION, self._create_organization)
            await self._step(Step.CONFIGURE_DNS, self._configure_dns)
            await self._step(Step.WAIT_FOR_DNS, self._wait_for_propagation)
            await self._step(Step.VERIFY_DNS, self._verify_dns)
            generated = await self._step(Step.GENERATE_INVITATIONS, self._generate_invitations)
            await self._step(Step.SEND_INVITATIONS, lambda state: self._send_invitations(state, generated))
            await self._step(Step.ACTIVATE, self._activate)
        except _Cancelled as cancelled:
            await self._compensate_to_the_end(cancelled.step, "Cancelled by support.")
            self._count_outcome("cancelled", cancelled.step)
            raise ApplicationError(
                f"Bootstrap cancelled during {cancelled.step}; compensation ran.", type="BootstrapCancelled"
            ) from None
        except _StepFailed as failure:
            await self._compensate_to_the_end(failure.step, failure.message)
            self._count_outcome("failed", failure.step)
            raise ApplicationError(
                f"Bootstrap failed at {failure.step}: {failure.message}", type="BootstrapFailed", non_retryable=True
            ) from None
        self._state.status = "active"
        self._state.current_step = ""
        self._count_outcome("completed")
        return BootstrapResult(
            organization_id=params.organization_id, domain=created.domain, invitations=self._state.invitations
        )

    async def _step(self, step: Step, body: Callable[[StepState], Awaitable[T]]) -> T:
        state = self._step_state(step)
        state.status, state.started_at = StepStatus.RUNNING, workflow.now().isoformat()
        self._state.current_step = step
        try:
            result = await body(state)
        # Failures the run reports (activity errors, timeouts, cancellation), not bugs in this code: a bug fails
        # the workflow task, which Temporal retries until a fixed worker is deployed, instead of compensating.
        except (FailureError, _StepFailed, asyncio.CancelledError) as err:
            state.finished_at = workflow.now().isoformat()
            state.status = StepStatus.FAILED
            if is_cancelled_exception(err):
                state.error = "Cancelled"
                raise _Cancelled(step) from None
            state.error = err.message if isinstance(err, _StepFailed) else _describe(err)
            self._state.errors.append(f"{step}: {state.error}")
            raise _StepFailed(step, state.error) from None
        state.status, state.finished_at = StepStatus.DONE, workflow.now().isoformat()
        return result

    # --- Steps ------------------------------------------------------------------------------------------

    async def _create_organization(self, state: StepState) -> CreatedOrganization:
        p = self._params
        state.attempts = 1
        return await self._activity(
            Activity.CREATE_ORGANIZATION,
            CreateOrganizationInput(
                organization_id=p.organization_id,
                name=p.name,
                type=p.type,
                subdomain=p.subdomain,
                parent_id=p.parent_id,
                requested_by_id=p.requested_by_id,
                attempt=p.attempt,
            ),
            CreatedOrganization,
        )

    async def _configure_dns(self, state: StepState) -> DnsDetails:
        # Retried here rather than by the activity's policy, so the state query can show each attempt.
        t = self._params.timings
        delay = t.retry_initial_interval
        for attempt in range(1, t.dns_configure_max_attempts + 1):
            state.attempts = attempt
            try:
                dns = await self._activity(
                    Activity.CONFIGURE_DNS,
                    ConfigureDnsInput(self._params.organization_id, self._params.subdomain, self._params.attempt),
                    DnsDetails,
                    retry=RetryPolicy(maximum_attempts=1),
                )
            except ACTIVITY_FAILURES as err:
                if is_cancelled_exception(err) or not _retryable(err) or attempt == t.dns_configure_max_attempts:
                    raise
                state.error = _describe(err)
                asked = getattr(_application_error(err), "next_retry_delay", None)  # the provider's Retry-After
                await workflow.sleep(max(timedelta(seconds=delay), asked or timedelta()))
                delay = min(delay * 2, t.retry_max_interval)
                continue
            self._state.dns = dns
            self._dns_configured_at = workflow.now()
            state.error = ""
            return dns
        raise AssertionError("unreachable")

    async def _wait_for_propagation(self, state: StepState) -> None:
        await self._wait_or_recheck(self._params.timings.dns_propagation_wait)

    async def _verify_dns(self, state: StepState) -> DnsVerification:
        t = self._params.timings
        dns = self._state.dns
        deadline = workflow.now() + timedelta(seconds=t.dns_verify_timeout)
        delay = t.retry_initial_interval
        while True:
            state.attempts += 1
            result = await self._activity(
                Activity.VERIFY_DNS,
                VerifyDnsInput(self._params.organization_id, dns.fqdn, dns.target, dns.proxied, self._params.attempt),
                DnsVerification,
            )
            dns.verified_by, dns.last_check = result.verified_by, workflow.now().isoformat()
            if result.verified:
                state.error = ""
                self._record_dns_verified(state.attempts)
                return result
            state.error = result.detail
            remaining = (deadline - workflow.now()).total_seconds()
            if remaining <= 0:
                raise _StepFailed(
                    Step.VERIFY_DNS,
                    f"{dns.fqdn} did not reach the resolver quorum after {state.attempts} checks "
                    f"in {t.dns_verify_timeout:.0f}s: {result.detail}",
                )
            await self._wait_or_recheck(min(delay, remaining))
            delay = min(delay * 2, t.retry_max_interval)

    async def _generate_invitations(self, state: StepState) -> GeneratedInvitations:
        p = self._params
        state.attempts = 1
        generated = await self._activity(
            InvitationActivity.GENERATE,
            GenerateInvitationsInput(p.organization_id, p.invitees, p.requested_by_id, p.attempt),
            GeneratedInvitations,
            local=self._local_for(len(p.invitees), before_patch=False),
        )
        self._state.invitations = InvitationCounts(total=len(generated.invitation_ids))
        return generated

    async def _send_invitations(self, state: StepState, generated: GeneratedInvitations) -> None:
        p = self._params
        state.attempts = 1
        self._list_invitations(generated.invitation_ids)
        if generated.invitation_ids:
            await self._activity(
                InvitationActivity.ENQUEUE_EMAILS,
                EnqueueInvitationEmailsInput(
                    p.organization_id, generated.invitation_ids, workflow.info().workflow_id, p.attempt
                ),
                EnqueuedInvitationEmails,
                local=self._local_for(len(generated.invitation_ids), before_patch=True),
            )
            # Results still missing when the wait ends count as failures below.
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: len(self._reports) >= len(self._expected_invitations),
                    timeout=timedelta(seconds=p.timings.email_results_timeout),
                )
        counts = self._count_invitations(final=True)
        emails = workflow.metric_meter().create_counter(
            "a4c_invitation_emails", "Invitation emails of bootstraps, by result when the bootstrap counted them."
        )
        emails.add(counts.sent, {"result": "sent"})
        emails.add(counts.failed, {"result": "failed"})
        if counts.failed:
            state.error = f"{counts.failed} of {counts.total} invitation emails failed; support can resend them."
        # Failed emails do not fail the bootstrap: they are recorded and shown for support to resend.
        await self._activity(
            Activity.RECORD_INVITATIONS_SENT,
            RecordInvitationsSentInput(p.organization_id, counts, p.attempt),
            NoneType,
        )

    async def _activate(self, state: StepState) -> None:
        state.attempts = 1
        await self._activity(
            Activity.ACTIVATE,
            ActivateOrganizationInput(self._params.organization_id, self._params.attempt),
            NoneType,
        )

    # --- Compensation -----------------------------------------------------------------------------------

    async def _compensate_to_the_end(self, failed_step: str, message: str) -> None:
        if not workflow.patched(SHIELDED_COMPENSATION_PATCH):
            await self._compensate(failed_step, message)
            return
        compensation = asyncio.ensure_future(self._compensate(failed_step, message))
        while not compensation.done():
            # A cancel asks for what is running already: it reaches this await only, never the compensation.
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(compensation)
        compensation.result()

    async def _compensate(self, failed_step: str, message: str) -> None:
        self._state.status = "compensating"
        self._compensating = True
        p = self._params
        if self._started(Step.CONFIGURE_DNS):
            # Even a failed configure may have created the record before its answer was lost.
            record_id = self._state.dns.record_id
            if await self._compensation(
                CompensationStep.REMOVE_DNS,
                Activity.REMOVE_DNS,
                RemoveDnsInput(p.organization_id, p.subdomain, record_id, p.attempt),
            ):
                self._mark_compensated(Step.CONFIGURE_DNS, Step.WAIT_FOR_DNS, Step.VERIFY_DNS)
        if self._started(Step.GENERATE_INVITATIONS) and await self._compensation(
            CompensationStep.REVOKE_INVITATIONS,
            InvitationActivity.REVOKE_PENDING,
            RevokePendingInvitationsInput(p.organization_id, f"Bootstrap failed at {failed_step}", p.attempt),
            RevokedInvitations,
            local=self._local_for(len(p.invitees), before_patch=True),
        ):
            self._mark_compensated(Step.GENERATE_INVITATIONS, Step.SEND_INVITATIONS)
        await self._compensation(
            CompensationStep.MARK_FAILED,
            Activity.MARK_FAILED,
            MarkFailedInput(p.organization_id, failed_step, message, list(self._state.compensation), p.attempt),
            bounded=False,
        )
        if self._step_state(Step.CREATE_ORGANIZATION).status == StepStatus.DONE:
            self._mark_compensated(Step.CREATE_ORGANIZATION)
        self._state.status = "failed"
        self._state.current_step = ""

    async def _compensation(
        self,
        name: str,
        activity: str,
        arg: Any,
        result_type: type = NoneType,
        *,
        local: bool = True,
        bounded: bool = True,
    ) -> bool:
        """Run one compensation step; a failure is recorded and the remaining steps still run.

        A step is retried until it succeeds or fails for good, for up to `compensation_step_timeout` when
        `bounded` (a DNS provider that stays down must not hold back the steps after it), or for as long as it
        takes (marking the organization failed: giving up would leave it pending, holding its subdomain)."""
        state = StepState(name=name, status=StepStatus.RUNNING, started_at=workflow.now().isoformat())
        self._state.compensation.append(state)
        limit = self._params.timings.compensation_step_timeout
        # A workflow timer: a local activity's own schedule-to-close does not stop its retries.
        timed = bounded and workflow.patched(BOUNDED_COMPENSATION_PATCH)
        timer = asyncio.timeout(limit) if timed else contextlib.nullcontext()
        try:
            async with timer:
                await self._activity(activity, arg, result_type, local=local, retry=self._compensation_retry())
        except (TimeoutError, FailureError) as err:  # the builtin TimeoutError is the timer's
            given_up = isinstance(err, TimeoutError)
            error = f"Still failing after {limit:.0f}s of retries; given up." if given_up else _describe(err)
            state.status, state.error = StepStatus.FAILED, error
            self._state.errors.append(f"compensation {name}: {error}")
            return False
        finally:
            state.finished_at = workflow.now().isoformat()
        state.status = StepStatus.DONE
        return True

    # --- Metrics ----------------------------------------------------------------------------------------
    # On the worker's metrics endpoint (TEMPORAL_METRICS_ADDRESS), beside the SDK's own. The SDK does not record
    # them while a run replays, so each is counted once however often the run is replayed.

    def _count_outcome(self, outcome: str, step: str = "") -> None:
        workflow.metric_meter().create_counter(
            "a4c_bootstraps", "Bootstraps ended: completed, failed or cancelled, with the step that failed."
        ).add(1, {"outcome": outcome, "failed_step": step})

    def _record_dns_verified(self, checks: int) -> None:
        meter = workflow.metric_meter()
        if self._dns_configured_at is not None:
            meter.create_histogram_timedelta(
                "a4c_dns_verification", "From the DNS record's configuration to its verification.", "duration"
            ).record(workflow.now() - self._dns_configured_at)
        meter.create_histogram("a4c_dns_verification_checks", "Checks it took to verify the DNS record.").record(checks)

    # --- Helpers ----------------------------------------------------------------------------------------

    async def _activity(
        self, name: str, arg: Any, result_type: type[T], *, retry: RetryPolicy | None = None, local: bool = True
    ) -> T:
        t = self._params.timings
        execute = workflow.execute_local_activity if self._local_activities and local else workflow.execute_activity
        waits = self._wait_for_cancelled_steps
        result = await execute(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=timedelta(seconds=t.activity_timeout),
            retry_policy=retry
            or RetryPolicy(
                initial_interval=timedelta(seconds=t.activity_retry_initial_interval),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(seconds=30),
                maximum_attempts=t.activity_max_attempts,
            ),
            cancellation_type=(
                workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
                if waits
                else workflow.ActivityCancellationType.TRY_CANCEL
            ),
        )
        if waits and not self._compensating and workflow.cancellation_reason() is not None:
            # Cancelled while the activity ran, and it finished its work anyway: the step is compensated like any
            # other that started. (The SDK hands the result back and forgets the cancel, so raise it here.)
            raise asyncio.CancelledError()
        return result

    def _compensation_retry(self) -> RetryPolicy:
        return RetryPolicy(
            initial_interval=timedelta(seconds=self._params.timings.activity_retry_initial_interval),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(minutes=5),
            maximum_attempts=0,
        )

    async def _wait_or_recheck(self, seconds: float) -> None:
        if seconds > 0 and not self._recheck_requested:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._recheck_requested, timeout=timedelta(seconds=seconds))
        self._recheck_requested = False

    def _local_for(self, invitees: int, *, before_patch: bool) -> bool:
        if workflow.patched(INVITEE_COUNT_PATCH):
            return invitees <= LOCAL_MAX_INVITEES
        return before_patch

    def _list_invitations(self, invitation_ids: list[str]) -> None:
        self._expected_invitations = set(invitation_ids)
        self._invitations_listed = True
        self._count_invitations()
        for report in self._early_reports or ():
            self._record_delivery(report)
        self._early_reports = None

    def _count_invitations(self, final: bool = False) -> InvitationCounts:
        self._results_final = final
        total = len(self._expected_invitations)
        reported_failed = self._failed_reports
        sent = len(self._reports) - len(reported_failed)
        missing = sorted(self._expected_invitations - self._reports.keys()) if final else []
        counts = InvitationCounts(
            total=total,
            sent=sent,
            failed=len(reported_failed) + len(missing),
            pending=0 if final else total - len(self._reports),
            failed_invitation_ids=sorted(reported_failed) + missing,
        )
        self._state.invitations = counts
        return counts

    def _step_state(self, step: str) -> StepState:
        return next(s for s in self._state.steps if s.name == step)

    def _started(self, step: str) -> bool:
        return self._step_state(step).status != StepStatus.PENDING

    def _mark_compensated(self, *steps: str) -> None:
        for step in steps:
            state = self._step_state(step)
            if state.status == StepStatus.DONE:
                state.status = StepStatus.COMPENSATED
