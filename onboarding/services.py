"""Onboarding requests and their bootstraps: keeping a request, starting, retrying and cancelling its bootstrap,
asking it to check DNS now. Called from the admin and the API; the workflow's steps are the organizations' and the
invitations' own services, run through their activities.

Temporal's errors stop here: callers get the domain errors below (BootstrapConflict, BootstrapNotStarted,
BootstrapUnavailable), never the SDK's.
"""

import contextlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from invitations.payloads import Invitee
from invitations.validation import invitees_validate
from organizations.models import Organization, OrganizationStatus
from organizations.validation import (
    SubdomainTaken,
    check_subdomain_available,
    validate_name,
    validate_subdomain,
    validate_type,
)
from temporal_bridge.client import (
    TemporalUnavailable,
    cancel_workflow,
    describe_workflow,
    signal_workflow_rollback_unsafe,
    start_workflow_rollback_unsafe,
)
from temporal_bridge.queues import TaskQueue

from .models import OnboardingInvitee, OnboardingRequest
from .payloads import RECHECK_DNS_SIGNAL, WORKFLOW_TYPE, BootstrapInput, BootstrapTimings, bootstrap_workflow_id
from .selectors import STARTING_GRACE, UNSUCCESSFUL_ENDS

__all__ = ["SubdomainTaken"]

log = logging.getLogger(__name__)


class BootstrapDisabled(RuntimeError):
    """ENABLE_ORG_BOOTSTRAP is off: no new bootstraps or retries are started. Running ones go on, and support
    can still cancel them or ask for a DNS re-check."""

    def __init__(self) -> None:
        super().__init__(
            "Organization bootstrapping is switched off (ENABLE_ORG_BOOTSTRAP=false). "
            "Running bootstraps continue; nothing new is started."
        )


class BootstrapConflict(RuntimeError):
    """The request cannot start now: already started, running, or finished (HTTP 409)."""


class BootstrapUnavailable(RuntimeError):
    """Temporal could not be reached, or refused: nothing was done; try again."""


class BootstrapNotStarted(BootstrapUnavailable):
    """Temporal could not take the start: the request is kept, unmarked, and can be started again."""

    def __init__(self, message: str, organization_id: uuid.UUID) -> None:
        super().__init__(message)
        self.organization_id = organization_id


@dataclass(frozen=True, kw_only=True)
class BootstrapStarted:
    organization_id: uuid.UUID
    workflow_id: str
    attempt: int


def bootstrap_timings() -> BootstrapTimings:
    return BootstrapTimings(
        dns_propagation_wait=settings.BOOTSTRAP_DNS_PROPAGATION_WAIT,
        dns_configure_max_attempts=settings.BOOTSTRAP_DNS_CONFIGURE_MAX_ATTEMPTS,
        dns_verify_timeout=settings.BOOTSTRAP_DNS_VERIFY_TIMEOUT,
        retry_initial_interval=settings.BOOTSTRAP_RETRY_INITIAL_INTERVAL,
        retry_max_interval=settings.BOOTSTRAP_RETRY_MAX_INTERVAL,
        activity_timeout=settings.BOOTSTRAP_ACTIVITY_TIMEOUT,
        email_results_timeout=settings.BOOTSTRAP_EMAIL_RESULTS_TIMEOUT,
        activity_retry_initial_interval=settings.BOOTSTRAP_ACTIVITY_RETRY_INITIAL_INTERVAL,
        activity_max_attempts=settings.BOOTSTRAP_ACTIVITY_MAX_ATTEMPTS,
        compensation_step_timeout=settings.BOOTSTRAP_COMPENSATION_STEP_TIMEOUT,
    )


# What callers (the API's clients among them) are told; Temporal's address and its gRPC error text go to the log.
TEMPORAL_UNAVAILABLE = "Temporal is unavailable; nothing was done. Try again later."
TEMPORAL_REFUSED = "Temporal refused the request; nothing was done. Try again later."


@contextlib.contextmanager
def _temporal_errors():
    """Temporal's errors as this module's: unreachable or refused, nothing was done. A NOT_FOUND RPCError passes
    through: it is an answer (no such run), the caller's to interpret."""
    try:
        yield
    except TemporalUnavailable as exc:
        log.warning("Temporal unavailable: %s", exc)
        raise BootstrapUnavailable(TEMPORAL_UNAVAILABLE) from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise
        log.warning("Temporal refused (%s: %s)", exc.status.name, exc.message)
        raise BootstrapUnavailable(TEMPORAL_REFUSED) from exc


def bootstrap_enabled() -> bool:
    """The rollback switch (ENABLE_ORG_BOOTSTRAP), read in this one place."""
    return settings.ENABLE_ORG_BOOTSTRAP


def _ensure_enabled() -> None:
    if not bootstrap_enabled():
        raise BootstrapDisabled()


# --- Requests: validate, then write, then start after commit --------------------------------------------


def onboarding_request_validate(
    *, name: str, type: str, subdomain: str, parent_id=None, invitees: Sequence[dict], exclude_id=None
) -> dict:
    """Check every field and return the cleaned values; raise ValidationError with every field's problems.

    A taken subdomain raises SubdomainTaken instead (a conflict with existing state, not bad input).
    """
    errors: dict[str, list[str]] = {}
    cleaned: dict = {}
    for field, check, value in (
        ("name", validate_name, name),
        ("type", validate_type, type),
        ("subdomain", validate_subdomain, subdomain),
    ):
        try:
            cleaned[field] = check(value)
        except ValidationError as exc:
            errors[field] = exc.messages
    if parent_id:
        parent = Organization.objects.filter(pk=parent_id).first()
        if parent is None:
            errors["parent_id"] = ["No organization has this id."]
        elif parent.status in (OrganizationStatus.FAILED, OrganizationStatus.DEACTIVATED):
            errors["parent_id"] = [f"The parent organization is {parent.status}."]
    cleaned["parent_id"] = str(parent_id) if parent_id else None
    try:
        valid = invitees_validate(
            invitees, max_count=settings.BOOTSTRAP_MAX_INVITEES, require_admin=True, per="bootstrap"
        )
        cleaned["invitees"] = [
            {"email": v.email, "first_name": v.first_name, "last_name": v.last_name, "role": v.role} for v in valid
        ]
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    check_subdomain_available(cleaned["subdomain"], exclude_id=exclude_id)
    return cleaned


@transaction.atomic
def onboarding_request_create(
    *, name: str, type: str, subdomain: str, invitees: Sequence[dict], parent_id=None, created_by=None
) -> OnboardingRequest:
    cleaned = onboarding_request_validate(
        name=name, type=type, subdomain=subdomain, parent_id=parent_id, invitees=invitees
    )
    request = OnboardingRequest.objects.create(
        name=cleaned["name"],
        type=cleaned["type"],
        subdomain=cleaned["subdomain"],
        parent_id=cleaned["parent_id"],
        created_by=created_by,
    )
    OnboardingInvitee.objects.bulk_create(OnboardingInvitee(request=request, **i) for i in cleaned["invitees"])
    return request


def _bootstrap_input(request: OnboardingRequest, invitees: list[dict], attempt: int) -> BootstrapInput:
    return BootstrapInput(
        organization_id=str(request.organization_id),
        name=request.name,
        type=request.type,
        subdomain=request.subdomain,
        invitees=[Invitee(**i) for i in invitees],
        parent_id=str(request.parent_id) if request.parent_id else None,
        requested_by_id=request.created_by_id,
        attempt=attempt,
        timings=bootstrap_timings(),
    )


def _start_on_commit(request: OnboardingRequest, params: BootstrapInput) -> str:
    """Start the workflow once the caller's transaction commits. If Temporal cannot take it, undo this
    attempt's mark on the request (so support can simply start again) and raise to the caller."""
    workflow_id = bootstrap_workflow_id(params.organization_id)
    first = params.attempt == 1

    def unmark() -> None:
        OnboardingRequest.objects.filter(pk=request.pk).update(
            bootstrap_attempts=F("bootstrap_attempts") - 1, **({"bootstrap_started_at": None} if first else {})
        )

    def start() -> None:
        try:
            start_workflow_rollback_unsafe(WORKFLOW_TYPE, params, id=workflow_id, queue=TaskQueue.BOOTSTRAP)
        except WorkflowAlreadyStartedError as exc:
            if not first:
                unmark()  # the earlier run is still going: this retry never was an attempt
            raise BootstrapConflict(
                f"A bootstrap of {params.name} is already running (workflow {workflow_id})."
            ) from exc
        except TemporalUnavailable as exc:
            if _started_anyway(workflow_id, params.attempt):
                # The answer was lost, not the start (a timeout after the server took it): the run is going.
                log.warning("Start of %s timed out, but its run is there; keeping it", workflow_id)
                return
            unmark()
            log.warning("Start of %s not taken, Temporal unavailable: %s", workflow_id, exc)
            raise BootstrapNotStarted(
                f"Temporal is unavailable; the request for {params.name} is kept: start it again later.",
                request.organization_id,
            ) from exc
        except RPCError as exc:  # refused (rate limited, namespace busy...): no run exists, so nothing started
            unmark()
            log.warning("Start of %s refused by Temporal (%s: %s)", workflow_id, exc.status.name, exc.message)
            raise BootstrapNotStarted(
                f"Temporal refused to start the bootstrap; the request for {params.name} is kept: "
                "start it again later.",
                request.organization_id,
            ) from exc
        except Exception:
            unmark()
            raise

    transaction.on_commit(start)
    return workflow_id


def _started_anyway(workflow_id: str, attempt: int) -> bool:
    """Whether a start whose answer never came did start this attempt's run (best effort: False if Temporal cannot
    say either, and the request is then left startable as before)."""
    try:
        description = describe_workflow(workflow_id)
    except (TemporalUnavailable, RPCError):
        return False
    if attempt == 1:
        return True  # the first run of this id
    # A retry's run is the newest one and running; the previous attempt's has ended (retry needs that).
    return description.status == WorkflowExecutionStatus.RUNNING


def organization_bootstrap_start(*, request: OnboardingRequest, started_by=None) -> BootstrapStarted:
    """Start the bootstrap of a request, once. The workflow starts after this transaction commits."""
    _ensure_enabled()
    with transaction.atomic():
        request = OnboardingRequest.objects.select_for_update().get(pk=request.pk)
        if request.bootstrap_started_at is not None:
            raise BootstrapConflict(
                f"The bootstrap of {request.name} was already started; retry it from the organization's page."
            )
        invitees = list(request.invitees.values("email", "first_name", "last_name", "role"))
        cleaned = onboarding_request_validate(
            name=request.name,
            type=request.type,
            subdomain=request.subdomain,
            parent_id=request.parent_id,
            invitees=invitees,
            exclude_id=request.organization_id,  # its own organization, if an earlier start got that far
        )
        request.bootstrap_started_at, request.bootstrap_attempts = timezone.now(), 1
        request.save(update_fields=["bootstrap_started_at", "bootstrap_attempts"])
        workflow_id = _start_on_commit(request, _bootstrap_input(request, cleaned["invitees"], attempt=1))
    log.info(
        "Bootstrap of organization %s started by user %s", request.organization_id, getattr(started_by, "pk", None)
    )
    return BootstrapStarted(organization_id=request.organization_id, workflow_id=workflow_id, attempt=1)


def organization_bootstrap_retry(*, organization_id, started_by=None) -> BootstrapStarted:
    """Start a new run for a failed bootstrap: same organization, same workflow id, next attempt.

    Failed means the organization is marked failed, or its run ended unsuccessfully without marking it:
    terminated or timed out in Temporal (no compensation ran), or failed before the organization existed.
    """
    _ensure_enabled()
    with transaction.atomic():
        request = OnboardingRequest.objects.select_for_update().get(organization_id=organization_id)
        organization = Organization.objects.filter(pk=organization_id).first()
        if organization is None or organization.status == OrganizationStatus.PENDING:
            _check_run_over(request)
        elif organization.status != OrganizationStatus.FAILED:
            raise BootstrapConflict(
                f"Only a failed bootstrap can be retried; this organization is {organization.status}."
            )
        check_subdomain_available(request.subdomain, exclude_id=organization_id)
        invitees = list(request.invitees.values("email", "first_name", "last_name", "role"))
        previous = organization.bootstrap_attempt if organization else 0
        request.bootstrap_attempts = max(request.bootstrap_attempts, previous) + 1
        request.save(update_fields=["bootstrap_attempts"])
        workflow_id = _start_on_commit(request, _bootstrap_input(request, invitees, attempt=request.bootstrap_attempts))
    return BootstrapStarted(
        organization_id=request.organization_id, workflow_id=workflow_id, attempt=request.bootstrap_attempts
    )


def _check_run_over(request: OnboardingRequest) -> None:
    """Refuse the retry of a bootstrap whose organization was not marked failed, unless its run is over for good.

    A run ended by Temporal (terminated, timed out) stops at once, but a step it had under way on a worker goes
    on to its end: until the activity timeout has passed since the run closed, a new run could meet that step's
    late writes, so the retry waits for them.
    """
    not_failed = BootstrapConflict("Only a failed bootstrap can be retried; this one has not failed.")
    if request.bootstrap_started_at is None:
        raise not_failed
    try:
        with _temporal_errors():
            run = describe_workflow(bootstrap_workflow_id(str(request.organization_id)))
    except RPCError as exc:
        if timezone.now() - request.bootstrap_started_at >= STARTING_GRACE:
            return  # deleted after Temporal's retention period, or its start was lost: no run can write any more
        raise not_failed from exc
    if run.status not in UNSUCCESSFUL_ENDS:
        raise not_failed
    if run.status != WorkflowExecutionStatus.FAILED and run.close_time is not None:
        settled = run.close_time + timedelta(seconds=settings.BOOTSTRAP_ACTIVITY_TIMEOUT)
        if timezone.now() < settled:
            raise BootstrapConflict(
                f"The bootstrap's run was {run.status.name.lower().replace('_', ' ')} at "
                f"{run.close_time:%H:%M:%S} UTC. A step it had under way may still finish until "
                f"{settled:%H:%M:%S} UTC (BOOTSTRAP_ACTIVITY_TIMEOUT); retry after that."
            )


def _while_running(organization_id, act: Callable[[str], None]) -> None:
    """Act on the bootstrap's workflow if it is running; BootstrapConflict if it has ended or never started (a
    stale page, a double click), rather than an error or a success message for nothing."""
    workflow_id = bootstrap_workflow_id(str(organization_id))
    try:
        with _temporal_errors():
            status = describe_workflow(workflow_id).status
            if status == WorkflowExecutionStatus.RUNNING:
                act(workflow_id)
                return
    except RPCError:  # NOT_FOUND: it ended between the look and the act, or never began
        status = None
    ended = f" (it is {status.name.lower().replace('_', ' ')})" if status is not None else ""
    raise BootstrapConflict(f"This bootstrap is not running{ended}.")


def organization_bootstrap_cancel(*, organization_id) -> None:
    """Ask the running bootstrap to stop; the workflow compensates and ends as failed."""
    _while_running(organization_id, cancel_workflow)


def organization_dns_recheck(*, organization_id) -> None:
    _while_running(organization_id, partial(signal_workflow_rollback_unsafe, signal=RECHECK_DNS_SIGNAL))
