"""Reads for onboarding: a bootstrap's status (the live workflow state and the organization's record), counts."""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db import DEFAULT_DB_ALIAS
from django.utils import timezone
from temporalio.client import WorkflowExecutionStatus, WorkflowQueryFailedError
from temporalio.service import RPCError

from eventstore.events import RecordedEvent
from eventstore.selectors import events_for_correlation
from invitations.payloads import DELIVERY_STATE_QUERY
from organizations.models import Organization, OrganizationStatus
from organizations.payloads import InvitationCounts
from temporal_bridge.client import TemporalUnavailable, describe_workflow, query_workflow, workflow_ui_url

from .models import OnboardingRequest
from .payloads import STATE_QUERY, BootstrapState, Step, bootstrap_workflow_id

log = logging.getLogger(__name__)


def onboarding_request_counts(*, using: str = DEFAULT_DB_ALIAS) -> dict[str, int]:
    """Onboarding requests whose bootstrap was started, and those kept but not started (Temporal refused the start,
    or support has not run the action yet)."""
    qs = OnboardingRequest.objects.using(using)
    not_started = qs.filter(bootstrap_started_at__isnull=True).count()
    return {"started": qs.count() - not_started, "not_started": not_started}


UNSUCCESSFUL_ENDS = frozenset(
    {
        WorkflowExecutionStatus.FAILED,
        WorkflowExecutionStatus.CANCELED,
        WorkflowExecutionStatus.TERMINATED,
        WorkflowExecutionStatus.TIMED_OUT,
    }
)


@dataclass
class BootstrapStatus:
    """What support sees of one bootstrap: the live workflow state when Temporal answers, and always the
    organization projection and its event timeline."""

    onboarding: OnboardingRequest
    organization: Organization | None
    workflow_id: str
    workflow_status: str  # Temporal's execution status, "NOT_STARTED", or "UNKNOWN" when unreachable
    state: BootstrapState | None
    problem: str
    timeline: list[RecordedEvent]
    temporal_url: str

    @property
    def running(self) -> bool:
        return self.workflow_status == "RUNNING"

    @property
    def ended_unmarked(self) -> bool:
        """The run is over but the organization was not marked failed: it failed before creating it, or
        Temporal ended the run (terminated, timed out) before it could compensate."""
        unmarked = self.organization is None or self.organization.status == OrganizationStatus.PENDING
        ended = self.workflow_status == "NOT_KEPT" or self.workflow_status in {s.name for s in UNSUCCESSFUL_ENDS}
        return unmarked and ended

    @property
    def can_retry(self) -> bool:
        if self.ended_unmarked:
            return True
        return (
            self.organization is not None and not self.running and self.organization.status == OrganizationStatus.FAILED
        )

    @property
    def can_cancel(self) -> bool:
        return self.running


# How long after its start a bootstrap unknown to Temporal is taken to be still starting.
STARTING_GRACE = timedelta(minutes=5)


def _live_counts(workflow_id: str, fallback: InvitationCounts, timeout: float) -> InvitationCounts:
    """The email fan-out's counts while it runs, from its own state query (the bootstrap learns them at its end)."""
    try:
        return query_workflow(workflow_id, DELIVERY_STATE_QUERY, result_type=InvitationCounts, timeout=timeout)
    except (RPCError, TemporalUnavailable, WorkflowQueryFailedError, RuntimeError):
        return fallback  # not started yet, or Temporal busy: the bootstrap's own figure stands


def bootstrap_status(onboarding: OnboardingRequest, *, query_timeout: float = 3.0) -> BootstrapStatus:
    organization_id = str(onboarding.organization_id)
    workflow_id = bootstrap_workflow_id(organization_id)
    workflow_status, state, problem = "NOT_STARTED", None, ""
    if onboarding.bootstrap_started_at is not None:
        try:
            workflow_status = describe_workflow(workflow_id).status.name
            # A query replays the workflow on a worker; skip it when none may be polling.
            state = query_workflow(workflow_id, STATE_QUERY, result_type=BootstrapState, timeout=query_timeout)
            if state.current_step == Step.SEND_INVITATIONS and state.invitations_workflow_id:
                state.invitations = _live_counts(state.invitations_workflow_id, state.invitations, query_timeout)
        except RPCError as exc:
            problem = "Temporal did not return the live state."  # API clients see it too: the details are logged
            if "not found" not in exc.message.lower():
                log.warning("Live state of %s not returned (%s: %s)", workflow_id, exc.status.name, exc.message)
            elif timezone.now() - onboarding.bootstrap_started_at < STARTING_GRACE:
                workflow_status = "STARTING"  # committed a moment ago: the start is on its way
            else:
                # Temporal deletes a closed run's history after the namespace's retention period.
                workflow_status = "NOT_KEPT"
                problem = (
                    "Temporal no longer keeps this bootstrap's workflow (closed runs are deleted after the "
                    "namespace's retention period). The organization and its events below are the record."
                )
        except (TemporalUnavailable, WorkflowQueryFailedError, RuntimeError) as exc:
            problem = "Temporal did not return the live state."
            log.warning("Live state of %s not returned: %s", workflow_id, exc)
            workflow_status = workflow_status if workflow_status != "NOT_STARTED" else "UNKNOWN"
    return BootstrapStatus(
        onboarding=onboarding,
        organization=Organization.objects.filter(pk=organization_id).first(),
        workflow_id=workflow_id,
        workflow_status=workflow_status,
        state=state,
        problem=problem,
        timeline=events_for_correlation(correlation_id=organization_id),
        temporal_url=workflow_ui_url(workflow_id),
    )
