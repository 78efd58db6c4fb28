"""The organization bootstrap workflow.

create organization → configure DNS → durable wait for propagation → verify DNS → invite the first users (the
invitations' own fan-out workflow, run as a child) → activate. When a step fails for good, or support cancels, it
compensates (remove DNS, revoke invitations, mark the organization failed) and ends as failed.

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
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    FailureError,
    is_cancelled_exception,
)

with workflow.unsafe.imports_passed_through():
    from invitations.payloads import (
        DELIVERY_WORKFLOW_TYPE,
        InvitationActivity,
        InvitationDeliveryInput,
        InvitationDeliveryResult,
        RevokedInvitations,
        RevokePendingInvitationsInput,
        bootstrap_delivery_workflow_id,
    )
    from onboarding.payloads import (
        RECHECK_DNS_SIGNAL,
        STATE_QUERY,
        WORKFLOW_TYPE,
        BootstrapInput,
        BootstrapResult,
        BootstrapState,
        BootstrapStatus,
        CompensationStep,
        Step,
        StepState,
        StepStatus,
    )
    from organizations.payloads import (
        ActivateOrganizationInput,
        CompensationOutcome,
        ConfigureDnsInput,
        CreatedOrganization,
        CreateOrganizationInput,
        DnsDetails,
        DnsVerification,
        InvitationCounts,
        MarkFailedInput,
        OrganizationActivity,
        RecordInvitationsSentInput,
        RemoveDnsInput,
        VerifyDnsInput,
    )
    from temporal_bridge.queues import TaskQueue

T = TypeVar("T")

# The revoke compensation works per invitee: a long list must be a regular activity (a local one that outlives its
# workflow task is retried from scratch).
LOCAL_MAX_INVITEES = 20


class _StepFailed(Exception):
    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step, self.message = step, message


class _Cancelled(Exception):
    def __init__(self, step: str) -> None:
        super().__init__(step)
        self.step = step


# A regular activity's failure arrives as ActivityError wrapping the activity's error, a child workflow's as
# ChildWorkflowError wrapping its failure, a local activity's as that error itself.
ACTIVITY_FAILURES = (ActivityError, ApplicationError)


def _innermost(err: BaseException) -> BaseException:
    while isinstance(err, ActivityError | ChildWorkflowError) and err.cause is not None:
        err = err.cause
    return err


def _describe(err: BaseException) -> str:
    """The innermost message of an activity failure, which is the one a person can act on."""
    err = _innermost(err)
    return getattr(err, "message", None) or str(err) or type(err).__name__


def _application_error(err: BaseException) -> ApplicationError | None:
    err = _innermost(err)
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
            status=BootstrapStatus.RUNNING,
            current_step=Step.CREATE_ORGANIZATION,
            steps=[StepState(name=step) for step in Step],
        )
        self._recheck_requested = False
        self._compensating = False
        self._dns_configured_at: datetime | None = None

    # --- Messages ---------------------------------------------------------------------------------------

    @workflow.query(name=STATE_QUERY)
    def state(self) -> BootstrapState:
        return self._state

    @workflow.signal(name=RECHECK_DNS_SIGNAL)
    def recheck_dns(self) -> None:
        """Support asks for a DNS check now instead of after the current wait."""
        self._recheck_requested = True

    # --- The run ----------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, params: BootstrapInput) -> BootstrapResult:
        try:
            created = await self._step(Step.CREATE_ORGANIZATION, self._create_organization)
            await self._step(Step.CONFIGURE_DNS, self._configure_dns)
            await self._step(Step.WAIT_FOR_DNS, self._wait_for_propagation)
            await self._step(Step.VERIFY_DNS, self._verify_dns)
            await self._step(Step.SEND_INVITATIONS, self._send_invitations)
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
        self._state.status = BootstrapStatus.ACTIVE
        self._state.current_step = ""
        self._count_outcome("completed")
        return BootstrapResult(
            organization_id=params.organization_id, domain=created.domain, invitations=self._state.invitations
        )

    async def _step(self, step: Step, body: Callable[[StepState], Awaitable[T]]) -> T:
        state = self._step_state(step)
        state.status, state.started_at = StepStatus.RUNNING, workflow.now().isoformat()
        state.attempts = max(state.attempts, 1)
        self._state.current_step = step
        try:
            result = await body(state)
        # Failures the run reports (activity errors, timeouts, cancellation), not bugs in this code: a bug fails
        # the workflow task, which Temporal retries until a fixed worker is deployed, instead of compensating.
        except (FailureError, _StepFailed, asyncio.CancelledError) as err:
            state.finished_at = workflow.now().isoformat()
            state.status = StepStatus.FAILED
            if is_cancelled_exception(err) or is_cancelled_exception(_innermost(err)):
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
        return await self._activity(
            OrganizationActivity.CREATE,
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
        p, t = self._params, self._params.timings
        delay = t.retry_initial_interval
        for attempt in range(1, t.dns_configure_max_attempts + 1):
            state.attempts = attempt
            try:
                dns = await self._activity(
                    OrganizationActivity.CONFIGURE_DNS,
                    ConfigureDnsInput(organization_id=p.organization_id, subdomain=p.subdomain, attempt=p.attempt),
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
        p, t = self._params, self._params.timings
        dns = self._state.dns
        deadline = workflow.now() + timedelta(seconds=t.dns_verify_timeout)
        delay = t.retry_initial_interval
        state.attempts = 0
        while True:
            state.attempts += 1
            result = await self._activity(
                OrganizationActivity.VERIFY_DNS,
                VerifyDnsInput(
                    organization_id=p.organization_id,
                    fqdn=dns.fqdn,
                    target=dns.target,
                    proxied=dns.proxied,
                    attempt=p.attempt,
                ),
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

    async def _send_invitations(self, state: StepState) -> None:
        """The invitations' own fan-out, as a child workflow with a history of its own (a big invitee list stays
        away from this run's history limit); this run records its counts."""
        p, t = self._params, self._params.timings
        child_id = bootstrap_delivery_workflow_id(p.organization_id, p.attempt)
        self._state.invitations_workflow_id = child_id
        self._state.invitations = InvitationCounts(total=len(p.invitees), pending=len(p.invitees))
        delivered = await workflow.execute_child_workflow(
            DELIVERY_WORKFLOW_TYPE,
            InvitationDeliveryInput(
                organization_id=p.organization_id,
                invitees=p.invitees,
                scope=f"{workflow.info().workflow_id}/{p.attempt}",
                invited_by_id=p.requested_by_id,
                results_timeout=t.email_results_timeout,
                activity_timeout=t.activity_timeout,
                activity_retry_initial_interval=t.activity_retry_initial_interval,
                activity_max_attempts=t.activity_max_attempts,
            ),
            id=child_id,
            task_queue=self._queue(TaskQueue.USERS),
            result_type=InvitationDeliveryResult,
            # A cancel waits for the child to stop, so compensation finds every invitation it made.
            cancellation_type=workflow.ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        counts = delivered.counts
        self._state.invitations = counts
        self._check_cancelled()
        if counts.failed:
            state.error = f"{counts.failed} of {counts.total} invitation emails failed; support can resend them."
        # Failed emails do not fail the bootstrap: they are recorded and shown for support to resend.
        await self._activity(
            OrganizationActivity.RECORD_INVITATIONS_SENT,
            RecordInvitationsSentInput(organization_id=p.organization_id, counts=counts, attempt=p.attempt),
            NoneType,
        )

    async def _activate(self, state: StepState) -> None:
        p = self._params
        await self._activity(
            OrganizationActivity.ACTIVATE,
            ActivateOrganizationInput(organization_id=p.organization_id, attempt=p.attempt),
            NoneType,
        )

    # --- Compensation -----------------------------------------------------------------------------------

    async def _compensate_to_the_end(self, failed_step: str, message: str) -> None:
        compensation = asyncio.ensure_future(self._compensate(failed_step, message))
        while not compensation.done():
            # A cancel asks for what is running already: it reaches this await only, never the compensation.
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(compensation)
        compensation.result()

    async def _compensate(self, failed_step: str, message: str) -> None:
        self._state.status = BootstrapStatus.COMPENSATING
        self._compensating = True
        p = self._params
        # Even a failed configure may have created the record before its answer was lost.
        if self._started(Step.CONFIGURE_DNS) and await self._compensation(
            CompensationStep.REMOVE_DNS,
            OrganizationActivity.REMOVE_DNS,
            RemoveDnsInput(
                organization_id=p.organization_id,
                subdomain=p.subdomain,
                record_id=self._state.dns.record_id,
                attempt=p.attempt,
            ),
        ):
            self._mark_compensated(Step.CONFIGURE_DNS, Step.WAIT_FOR_DNS, Step.VERIFY_DNS)
        if self._started(Step.SEND_INVITATIONS) and await self._compensation(
            CompensationStep.REVOKE_INVITATIONS,
            InvitationActivity.REVOKE_PENDING,
            RevokePendingInvitationsInput(
                organization_id=p.organization_id, reason=f"Bootstrap failed at {failed_step}", attempt=p.attempt
            ),
            RevokedInvitations,
            local=len(p.invitees) <= LOCAL_MAX_INVITEES,
        ):
            self._mark_compensated(Step.SEND_INVITATIONS)
        outcomes = [CompensationOutcome(step=c.name, status=c.status, error=c.error) for c in self._state.compensation]
        await self._compensation(
            CompensationStep.MARK_FAILED,
            OrganizationActivity.MARK_FAILED,
            MarkFailedInput(
                organization_id=p.organization_id,
                step=failed_step,
                message=message,
                compensation=outcomes,
                attempt=p.attempt,
            ),
            bounded=False,
        )
        if self._step_state(Step.CREATE_ORGANIZATION).status == StepStatus.DONE:
            self._mark_compensated(Step.CREATE_ORGANIZATION)
        self._state.status = BootstrapStatus.FAILED
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
        timer = asyncio.timeout(limit) if bounded else contextlib.nullcontext()
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
        execute = workflow.execute_local_activity if local else workflow.execute_activity
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
            # A cancel that arrives while a step runs waits for it: the step may still commit, and compensation
            # must find what it wrote (an organization created after compensation looked would stay pending).
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        self._check_cancelled()
        return result

    def _check_cancelled(self) -> None:
        if not self._compensating and workflow.cancellation_reason() is not None:
            # Cancelled while the step ran, and it finished its work anyway: the step is compensated like any
            # other that started. (The SDK hands the result back and forgets the cancel, so raise it here.)
            raise asyncio.CancelledError()

    def _queue(self, queue: TaskQueue) -> str:
        # The server-side name carries the deployment's prefix, as this run's own queue does.
        own, base = workflow.info().task_queue, TaskQueue.BOOTSTRAP.value
        prefix = own[: -len(base)] if own.endswith(base) else ""
        return f"{prefix}{queue.value}"

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

    def _step_state(self, step: str) -> StepState:
        return next(s for s in self._state.steps if s.name == step)

    def _started(self, step: str) -> bool:
        return self._step_state(step).status != StepStatus.PENDING

    def _mark_compensated(self, *steps: str) -> None:
        for step in steps:
            state = self._step_state(step)
            if state.status == StepStatus.DONE:
                state.status = StepStatus.COMPENSATED
