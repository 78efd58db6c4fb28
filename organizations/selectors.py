from dataclasses import dataclass
from datetime import timedelta

from django.db import DEFAULT_DB_ALIAS
from django.db.models import Count, QuerySet
from django.utils import timezone
from temporalio.client import WorkflowExecutionStatus, WorkflowQueryFailedError
from temporalio.service import RPCError

from eventstore.events import RecordedEvent
from eventstore.selectors import events_for_correlation
from temporal_bridge.client import TemporalUnavailable, describe_workflow, query_workflow, workflow_ui_url

from .models import RELEASED_STATUSES, OnboardingRequest, Organization, OrganizationStatus
from .payloads import STATE_QUERY, BootstrapState, bootstrap_workflow_id


def organization_subtree(
    organization: Organization, *, include_self: bool = True, using: str = DEFAULT_DB_ALIAS
) -> QuerySet[Organization]:
    """The organization and everything below it: one range scan on the path index.

    Paths hold only hex digits, so every string that starts with the prefix sorts between the prefix and
    the prefix followed by "g", whatever the database collation.
    """
    qs = Organization.objects.using(using).filter(path__gte=organization.path, path__lt=organization.path + "g")
    return qs if include_self else qs.exclude(pk=organization.pk)


def organization_counts(*, using: str = DEFAULT_DB_ALIAS) -> dict[str, int]:
    """Organizations per status, every status listed (0 where there are none)."""
    found = dict(Organization.objects.using(using).values_list("status").annotate(n=Count("pk")).order_by())
    return {status: found.get(status, 0) for status in OrganizationStatus.values}


def oldest_pending_organization_age(*, using: str = DEFAULT_DB_ALIAS) -> float:
    """Seconds since the oldest organization still pending was created (0 when none is): a bootstrap under way, or
    one stuck. Pending organizations are few, so this reads the status index, not the table."""
    oldest = (
        Organization.objects.using(using)
        .filter(status=OrganizationStatus.PENDING)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    return max((timezone.now() - oldest).total_seconds(), 0.0) if oldest else 0.0


def onboarding_request_counts(*, using: str = DEFAULT_DB_ALIAS) -> dict[str, int]:
    """Onboarding requests whose bootstrap was started, and those kept but not started (Temporal refused the start,
    or support has not run the action yet)."""
    qs = OnboardingRequest.objects.using(using)
    not_started = qs.filter(bootstrap_started_at__isnull=True).count()
    return {"started": qs.count() - not_started, "not_started": not_started}


def subdomain_in_use(subdomain: str, *, exclude_id=None, using: str = DEFAULT_DB_ALIAS) -> bool:
    qs = Organization.objects.using(using).filter(subdomain=subdomain).exclude(status__in=RELEASED_STATUSES)
    if exclude_id is not None:
        qs = qs.exclude(pk=exclude_id)
    return qs.exists()


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
        unmarked = self.organization is None or self.organization.status == "pending"
        ended = self.workflow_status == "NOT_KEPT" or self.workflow_status in {s.name for s in UNSUCCESSFUL_ENDS}
        return unmarked and ended

    @property
    def can_retry(self) -> bool:
        if self.ended_unmarked:
            return True
        return self.organization is not None and not self.running and self.organization.status == "failed"

    @property
    def can_cancel(self) -> bool:
        return self.running


# How long after its start a bootstrap unknown to Temporal is taken to be still starting.
STARTING_GRACE = timedelta(minutes=5)


def bootstrap_status(onboarding: OnboardingRequest, *, query_timeout: float = 3.0) -> BootstrapStatus:
    organization_id = str(onboarding.organization_id)
    workflow_id = bootstrap_workflow_id(organization_id)
    workflow_status, state, problem = "NOT_STARTED", None, ""
    if onboarding.bootstrap_started_at is not None:
        try:
            workflow_status = describe_workflow(workflow_id).status.name
            # A query replays the workflow on a worker; skip it when none may be polling.
            state = query_workflow(workflow_id, STATE_QUERY, result_type=BootstrapState, timeout=query_timeout)
        except RPCError as exc:
            problem = f"Temporal did not return the live state ({exc.status.name}: {exc.message})."
            if "not found" in exc.message.lower():
                if timezone.now() - onboarding.bootstrap_started_at < STARTING_GRACE:
                    workflow_status = "STARTING"  # committed a moment ago: the start is on its way
                else:
                    # Temporal deletes a closed run's history after the namespace's retention period.
                    workflow_status = "NOT_KEPT"
                    problem = (
                        "Temporal no longer keeps this bootstrap's workflow (closed runs are deleted after the "
                        "namespace's retention period). The organization and its events below are the record."
                    )
        except (TemporalUnavailable, WorkflowQueryFailedError, RuntimeError) as exc:
            problem = f"Temporal did not return the live state: {exc}"
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
