"""Writes for invitations: generate, email deliveries, accept, decline, resend, revoke, expire, remind.

Every state change is an event appended through `eventstore.services.events_append`; the projections in
`invitations.projections` turn them into rows in the same transaction. Status changes are check-then-act
under optimistic concurrency: the decision is taken on the projection row and appended with that row's
version as the expected stream version, so a concurrent change makes the append fail and the decision is
taken again (row locks would deadlock against the append lock the projector already runs under).
Signals to workflows and Celery tasks go out only after the transaction commits.
"""

import asyncio
import hashlib
import logging
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.db.models import Q
from django.utils import timezone
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from eventstore.catalogue import EventType, StreamType
from eventstore.events import EventMetadata, NewEvent
from eventstore.exceptions import ConcurrencyError
from eventstore.projections import rows_update
from eventstore.selectors import events_for_keys
from eventstore.services import events_append
from organizations.models import Organization, OrganizationStatus
from temporal_bridge.client import TemporalUnavailable, temporal
from temporal_bridge.registry import task_queue

from . import mail
from .emails import MAX_EMAIL_LENGTH, canonical_email, email_too_long
from .models import (
    FINAL_DELIVERY_STATUSES,
    DeliveryKind,
    DeliveryStatus,
    Invitation,
    InvitationDelivery,
    InvitationStatus,
    Membership,
)
from .payloads import (
    ACCEPTED_SIGNAL,
    DECLINED_SIGNAL,
    DELIVERY_SIGNAL,
    INVITATION_WORKFLOW_TYPE,
    RESENT_SIGNAL,
    REVOKED_SIGNAL,
    USERS_QUEUE,
    DeliveryReport,
    InvitationAccepted,
    InvitationClosed,
    InvitationResent,
    InvitationTimings,
    Invitee,
    Role,
    UserInvitationInput,
    invitation_workflow_id,
)
from .selectors import OutgoingEmail, TokenState, outgoing_email, selector_check, user_for_email
from .tokens import IssuedToken, token_issue

log = logging.getLogger(__name__)

# Namespaces of ids derived from idempotency scopes (uuid5), so a retried step finds its own rows again.
INVITATION_NAMESPACE = uuid.UUID("0b6f2a4e-5d1c-4f7e-a1c3-7e2d9b8c6a10")
DELIVERY_NAMESPACE = uuid.UUID("9c3e7d21-4b8a-4e6f-b2d5-1f0a8c7e3b92")
# The least a task holds a delivery while it sends; duplicates of the task wait that long at most.
MIN_DELIVERY_LEASE = timedelta(seconds=120)
LEASE_MARGIN = timedelta(seconds=30)
_CONFLICT_RETRIES = 5


class InvitationError(Exception):
    """An invitation operation that cannot be carried out. Messages are safe to show (no tokens)."""


class InvalidInvitationData(InvitationError, ValueError):
    """Bad input (email, role, organization): retrying cannot help."""


class OrganizationNotActive(InvitationError):
    """Only an active organization takes new invitations outside its bootstrap."""


class AlreadyInvited(InvalidInvitationData):
    """An invitee already has a pending invitation to the organization, or already belongs to it."""


class InvitationUnavailable(InvitationError):
    def __init__(self, state: TokenState):
        self.state = state
        super().__init__(f"This invitation cannot be used: {state}.")


class AccountExists(InvitationError):
    """The invited address already has an account: its owner must log in and confirm."""


class AccountMismatch(InvitationError):
    """The logged-in account's email is not the invited one."""


# --- Helpers ----------------------------------------------------------------------------------------------


def email_key(canonical: str) -> str:
    """Stable, short and PII-free stand-in for an address in idempotency keys."""
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def _retry_on_conflict[T](fn: Callable[[], T]) -> T:
    """Run `fn` in a transaction; if another writer moved the stream (or won a unique race), decide again."""
    for attempt in range(_CONFLICT_RETRIES):
        try:
            with transaction.atomic():
                return fn()
        except (ConcurrencyError, IntegrityError):
            if attempt == _CONFLICT_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def _append(invitation: Invitation, event: NewEvent, metadata: EventMetadata, *, by: int | None = None) -> None:
    events_append(
        stream_type=StreamType.INVITATION,
        stream_id=invitation.pk,
        events=[event],
        expected_version=invitation.version,
        metadata=metadata,
        created_by_id=by,
    )


def _metadata(invitation: Invitation, step: str, acting_user_id: int | None = None) -> EventMetadata:
    return EventMetadata(correlation_id=str(invitation.organization_id), step=step, acting_user_id=acting_user_id)


def _signal_many_rollback_unsafe(signals: Sequence[tuple[str, str, Any]]) -> int:
    """Send (invitation id, signal, payload) to the invitations' workflows concurrently. A workflow that has
    ended or a Temporal outage is logged, not raised: the workflow's own expiry check reconciles with the
    projection. Returns how many were delivered."""
    try:
        return _lifecycle_send_rollback_unsafe(signals)
    except (TemporalUnavailable, RPCError) as exc:
        log.warning("Could not signal %d invitation workflow(s): %s", len(signals), exc)
        return 0


def _signal_on_commit(invitation_id: str, name: str, arg: Any) -> None:
    transaction.on_commit(lambda: _signal_many_rollback_unsafe([(str(invitation_id), name, arg)]))


# --- Generating invitations (the bootstrap's step) ---------------------------------------------------------


@dataclass(frozen=True)
class ValidInvitee:
    email: str
    canonical: str
    first_name: str
    last_name: str
    role: str


def invitees_validate(invitees: Sequence[Invitee]) -> list[ValidInvitee]:
    """Every invitee checked before anything is written; all problems reported at once."""
    errors, seen, valid = [], set(), []
    roles = {r.value for r in Role}
    for n, invitee in enumerate(invitees, start=1):
        email = (invitee.email or "").strip()
        canonical = canonical_email(email)
        if email_too_long(email):
            errors.append(f"invitee {n}: the address is longer than {MAX_EMAIL_LENGTH} characters")
            continue
        try:
            validate_email(email)
        except ValidationError:
            errors.append(f"invitee {n}: {email!r} is not a valid email address")
            continue
        if canonical in seen:
            errors.append(f"invitee {n}: {email!r} is listed twice")
            continue
        if invitee.role not in roles:
            errors.append(f"invitee {n}: unknown role {invitee.role!r}")
            continue
        seen.add(canonical)
        first, last = (invitee.first_name or "").strip()[:150], (invitee.last_name or "").strip()[:150]
        valid.append(ValidInvitee(email, canonical, first, last, str(invitee.role)))
    if errors:
        raise InvalidInvitationData("; ".join(errors))
    return valid


def invitations_generate(
    *,
    organization_id: str,
    invitees: Sequence[Invitee],
    key_prefix: str,
    metadata: EventMetadata,
    invited_by_id: int | None = None,
    bootstrap_workflow_id: str = "",
) -> list[str]:
    """Create one pending invitation per invitee and record `organization.invitations_generated`.

    Safe to repeat with the same `key_prefix`: an invitee whose `invitation.created` is stored under its
    key, or who already has a pending invitation to the organization, keeps that invitation. Returns the
    invitation ids in invitee order. Each invitation commits on its own (one stream each).
    """
    valid = invitees_validate(invitees)
    if not Organization.objects.filter(pk=organization_id).exists():
        raise InvalidInvitationData(f"Organization {organization_id} does not exist.")
    keys = {v.canonical: f"{key_prefix}/{email_key(v.canonical)}" for v in valid}
    stored = events_for_keys(keys=keys.values())
    pending = dict(
        Invitation.objects.filter(
            organization_id=organization_id, status=InvitationStatus.PENDING, email_canonical__in=list(keys)
        ).values_list("email_canonical", "pk")
    )
    expires_at = (timezone.now() + timedelta(seconds=settings.INVITATION_TTL)).isoformat()
    ids: list[str] = []
    for invitee in valid:
        key = keys[invitee.canonical]
        if key in stored:
            ids.append(stored[key].stream_id)
            continue
        if invitee.canonical in pending:
            ids.append(str(pending[invitee.canonical]))
            continue
        invitation_id = str(uuid.uuid5(INVITATION_NAMESPACE, key))
        data = {
            "organization_id": str(organization_id),
            "email": invitee.email,
            "email_canonical": invitee.canonical,
            "first_name": invitee.first_name,
            "last_name": invitee.last_name,
            "role": invitee.role,
            "expires_at": expires_at,
            "invited_by_id": invited_by_id,
            "bootstrap_workflow_id": bootstrap_workflow_id,
        }
        events_append(
            stream_type=StreamType.INVITATION,
            stream_id=invitation_id,
            events=[NewEvent(EventType.INVITATION_CREATED, data, idempotency_key=key)],
            expected_version=0,
            metadata=metadata,
            created_by_id=invited_by_id,
        )
        ids.append(invitation_id)
    events_append(
        stream_type=StreamType.ORGANIZATION,
        stream_id=organization_id,
        events=[
            NewEvent(
                EventType.ORGANIZATION_INVITATIONS_GENERATED,
                {"count": len(ids)},
                idempotency_key=f"{key_prefix}/organization",
            )
        ],
        metadata=metadata,
        created_by_id=invited_by_id,
    )
    return ids


@dataclass(frozen=True)
class Invited:
    invitation_ids: list[str]
    # False when Temporal could not be reached after the commit: the invitations and their emails stand, and each
    # invitation's workflow starts when the invitee accepts or declines (signal-with-start), or on a resend.
    lifecycle_started: bool


def organization_invite(
    *, organization_id: str, invitees: Sequence[Invitee], requested_by_id: int | None = None
) -> Invited:
    """Invite people to an active organization, outside any bootstrap: the invitations, their emails (through
    Celery, after commit) and their lifecycle workflows (reminder, expiry), as a bootstrap's invitees get them.

    All or nothing: bad input, an invitee who already has a pending invitation or already belongs to the
    organization, or an organization that is not active refuses the whole list, and nothing is written.
    """
    valid = invitees_validate(invitees)
    scope = f"invite/{uuid.uuid4()}"  # each request its own: inviting someone again later is a new invitation
    metadata = EventMetadata(correlation_id=str(organization_id), step="invite", acting_user_id=requested_by_id)
    with transaction.atomic():
        # Locked, so two invitations of the same address at once, or a deactivation meanwhile, wait their turn.
        organization = Organization.objects.select_for_update().filter(pk=organization_id).first()
        if organization is None:
            raise InvalidInvitationData(f"Organization {organization_id} does not exist.")
        if organization.status != OrganizationStatus.ACTIVE:
            raise OrganizationNotActive(
                f"{organization.name} is {organization.get_status_display().lower()}: only an active organization "
                "takes new invitations (a pending one invites its first users through its bootstrap)."
            )
        _refuse_already_invited(str(organization_id), valid)
        ids = invitations_generate(
            organization_id=str(organization_id),
            invitees=invitees,
            key_prefix=scope,
            metadata=metadata,
            invited_by_id=requested_by_id,
        )
        invitation_emails_enqueue(
            organization_id=str(organization_id), invitation_ids=ids, notify_workflow_id="", scope=scope
        )
    try:
        invitation_workflows_start_rollback_unsafe(ids)
    except (TemporalUnavailable, RPCError) as exc:  # committed already: report it, do not fail the request
        log.warning("Invited %d to %s; their workflows start later (%s)", len(ids), organization_id, exc)
        return Invited(ids, lifecycle_started=False)
    return Invited(ids, lifecycle_started=True)


def _refuse_already_invited(organization_id: str, valid: Sequence[ValidInvitee]) -> None:
    pending = set(
        Invitation.objects.filter(
            organization_id=organization_id,
            status=InvitationStatus.PENDING,
            email_canonical__in=[v.canonical for v in valid],
        ).values_list("email_canonical", flat=True)
    )
    members = {
        canonical_email(email)
        for email in Membership.objects.filter(organization_id=organization_id).values_list("user__email", flat=True)
    }
    problems = [
        f"invitee {n}: {v.email!r} "
        + ("already has a pending invitation (resend it instead)" if v.canonical in pending else "is already a member")
        for n, v in enumerate(valid, start=1)
        if v.canonical in pending or v.canonical in members
    ]
    if problems:
        raise AlreadyInvited("; ".join(problems))


def invitation_timings() -> InvitationTimings:
    return InvitationTimings(reminder_delay=settings.INVITATION_REMINDER_DELAY)


def invitation_workflows_start_rollback_unsafe(invitation_ids: Sequence[str]) -> int:
    """Start the UserInvitationWorkflow of each invitation, concurrently; one already running (or done) is
    left alone, so this is safe to repeat. Returns how many are running now."""
    return _lifecycle_send_rollback_unsafe([(str(pk), None, None) for pk in invitation_ids])


def _lifecycle_send_rollback_unsafe(messages: Sequence[tuple[str, str | None, Any]]) -> int:
    """For each (invitation id, signal or None, payload): make sure the invitation's workflow runs, and deliver
    the signal if there is one. Returns how many were started or signalled (not: had ended).

    A run is started asleep (a start delay up to its first deadline, the reminder or the expiry): until then
    it would only wait, so it costs no workflow task and no place in a worker's cache. A plain signal does not
    wake such a run, so signals go as signal-with-start, which does (and starts a run that is missing).
    """
    rows = Invitation.objects.filter(pk__in=[pk for pk, _, _ in messages]).values_list(
        "pk", "organization_id", "expires_at"
    )
    timings, now = invitation_timings(), timezone.now()
    inputs = {
        str(pk): UserInvitationInput(str(pk), str(org), expires.isoformat(), timings) for pk, org, expires in rows
    }
    if missing := {pk for pk, _, _ in messages} - inputs.keys():
        log.warning("No invitation %s; its workflow is not started or signalled", ", ".join(sorted(missing)))
    todo = [(inputs[pk], name, arg) for pk, name, arg in messages if pk in inputs]
    if not todo:
        return 0
    queue = task_queue(USERS_QUEUE)
    remind_in = timedelta(seconds=timings.reminder_delay)

    def asleep_for(params: UserInvitationInput) -> timedelta | None:
        due = min(now + remind_in, datetime.fromisoformat(params.expires_at)) - now
        return due if due > timedelta(0) else None

    async def send_all(client: Client) -> int:
        gate = asyncio.Semaphore(64)

        async def one(params: UserInvitationInput, name: str | None, arg: Any) -> bool:
            workflow_id = invitation_workflow_id(params.invitation_id)
            options: dict[str, Any] = (
                {"start_delay": asleep_for(params), "id_conflict_policy": WorkflowIDConflictPolicy.USE_EXISTING}
                if name is None
                else {"start_signal": name, "start_signal_args": [arg]}
            )
            async with gate:
                try:
                    await client.start_workflow(
                        INVITATION_WORKFLOW_TYPE,
                        params,
                        id=workflow_id,
                        task_queue=queue,
                        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                        **options,
                    )
                    return True
                except WorkflowAlreadyStartedError:  # it has ended: nothing to start, no one to tell
                    if name is not None:
                        log.info("Workflow %s has ended; signal %s dropped", workflow_id, name)
                    return False

        return sum(await asyncio.gather(*(one(*m) for m in todo)))

    return temporal.run(send_all, timeout=settings.TEMPORAL_CLIENT_TIMEOUT + len(todo) / 20)


# --- Email deliveries --------------------------------------------------------------------------------------


def delivery_id_for(scope: str) -> uuid.UUID:
    return uuid.uuid5(DELIVERY_NAMESPACE, scope)


def deliveries_enqueue_rollback_unsafe(delivery_ids: Sequence[uuid.UUID | str]) -> None:
    """Publish one email task per delivery now, over one broker connection."""
    from .tasks import send_invitation_email

    with send_invitation_email.app.producer_or_acquire() as producer:
        for delivery_id in delivery_ids:
            send_invitation_email.apply_async((str(delivery_id),), producer=producer)


def deliveries_requeue_stale(*, older_than: timedelta, limit: int = 1000) -> int:
    """Publish again the deliveries nothing has moved for `older_than`: queued ones whose publish after commit
    failed (the broker was down at that moment), ones whose sender died past its lease, and, once their task's
    own retry is overdue too, ones waiting to retry or sent but not yet reported to their workflow (that retry's
    publish failed). A task for a delivery that is being or has been sent finds it busy or done, so a second
    publish is harmless. Returns how many were published; the oldest go first, at most `limit` per call."""
    now = timezone.now()
    cutoff = now - older_than
    overdue = cutoff - timedelta(seconds=settings.INVITATION_EMAIL_RETRY_BACKOFF_MAX)
    stale = InvitationDelivery.objects.filter(
        Q(status=DeliveryStatus.QUEUED, updated_at__lt=cutoff)
        | Q(status=DeliveryStatus.SENDING, claimed_until__lt=cutoff, updated_at__lt=cutoff)
        | Q(status=DeliveryStatus.RETRYING, updated_at__lt=overdue)
        | (
            Q(status__in=FINAL_DELIVERY_STATUSES, reported_at__isnull=True, updated_at__lt=overdue)
            # When it was sent or failed, which republishing does not move (unlike updated_at).
            & (Q(sent_at__gt=now - UNREPORTED_HORIZON) | Q(failed_at__gt=now - UNREPORTED_HORIZON))
            & ~Q(notify_workflow_id="")
        )
    )
    ids = list(stale.order_by("updated_at").values_list("pk", flat=True)[:limit])
    if ids:
        # Touched, so the next sweep leaves them to the tasks just published for `older_than` again.
        InvitationDelivery.objects.filter(pk__in=ids).update(updated_at=now)
        deliveries_enqueue_rollback_unsafe(ids)
        log.warning("Published %d stale invitation email deliveries again", len(ids))
    return len(ids)


# Past it no workflow waits for a report any more (a bootstrap waits BOOTSTRAP_EMAIL_RESULTS_TIMEOUT, an hour).
UNREPORTED_HORIZON = timedelta(days=1)


def delivery_report_postponed(*, delivery_id: str) -> bool:
    """Temporal could not take a delivery's report now and its task will try again: touch the row, so the sweep sees
    that chain alive instead of publishing another beside it (during a long outage they multiplied). False, and
    the report settled unsent, once the delivery is past UNREPORTED_HORIZON: no workflow waits for it any more."""
    now = timezone.now()
    recent = Q(sent_at__gt=now - UNREPORTED_HORIZON) | Q(failed_at__gt=now - UNREPORTED_HORIZON)
    if InvitationDelivery.objects.filter(recent, pk=delivery_id).update(updated_at=now):
        return True
    _delivery_set(delivery_id, reported_at=now)
    log.error("Delivery %s: still not reported after %s; given up", delivery_id, UNREPORTED_HORIZON)
    return False


def deliveries_enqueue_on_commit(delivery_ids: Sequence[uuid.UUID | str]) -> None:
    ids = list(delivery_ids)
    transaction.on_commit(lambda: deliveries_enqueue_rollback_unsafe(ids))


def invitation_emails_enqueue(
    *, organization_id: str, invitation_ids: Sequence[str], notify_workflow_id: str, scope: str, notify_attempt: int = 0
) -> int:
    """One delivery row and one Celery task per invitation; tasks are published after commit.

    Rows are keyed by `scope` + invitation, so a retried enqueue finds them and publishes again: a task for
    a delivery already sent only reports its result again, which the workflow counts once.
    """
    wanted = {str(i) for i in invitation_ids}
    found = {
        str(pk)
        for pk in Invitation.objects.filter(organization_id=organization_id, pk__in=wanted).values_list("pk", flat=True)
    }
    if missing := wanted - found:
        raise InvalidInvitationData(f"{len(missing)} invitation(s) are not invitations of {organization_id}.")
    now = timezone.now()
    rows = [
        InvitationDelivery(
            id=delivery_id_for(f"{scope}/{invitation_id}"),
            invitation_id=invitation_id,
            kind=DeliveryKind.INVITATION,
            notify_workflow_id=notify_workflow_id,
            notify_attempt=notify_attempt,
            queued_at=now,
            updated_at=now,
        )
        for invitation_id in dict.fromkeys(str(i) for i in invitation_ids)
    ]
    with transaction.atomic():
        InvitationDelivery.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
        deliveries_enqueue_on_commit([r.id for r in rows])
    return len(rows)


@dataclass
class Claim:
    """What a task holding a delivery should do: send (with this token), report (done), wait (busy)."""

    outcome: Literal["send", "done", "busy", "gone"]
    delivery: OutgoingEmail | None = None
    token: IssuedToken | None = None
    retry_in: float = 0.0


# The delivery row's writes are plain SQL: every email runs four of them, and compiling an ORM update costs more
# than the statement takes to run.


def _on_db_clock(connection) -> bool:
    """PostgreSQL times leases on its own clock; elsewhere (SQLite: the quickstart, one host) this host's clock."""
    return connection.vendor == "postgresql"


def _claim_sql(connection) -> str:
    q = connection.ops.quote_name
    meta = InvitationDelivery._meta

    def col(name: str) -> str:
        return q(meta.get_field(name).column)

    status, until = col("status"), col("claimed_until")
    db_clock = _on_db_clock(connection)
    now = "statement_timestamp()" if db_clock else "%s"
    lease_ends = f"{now} + %s" if db_clock else "%s"
    return (
        f"UPDATE {q(meta.db_table)} SET {status} = %s, {until} = {lease_ends}, "  # noqa: S608
        f"{col('attempts')} = {col('attempts')} + 1, {col('updated_at')} = %s "
        f"WHERE {col('id')} = %s AND ({status} IN (%s, %s) OR ({status} = %s AND {until} < {now}))"
    )


_CLAIM_SQL: dict[str, str] = {}


def delivery_lease() -> timedelta:
    """How long a claim holds a delivery: longer than the longest send to the configured relay, or a copy of the task
    could take over a send still waiting for its answer and mail the invitee twice."""
    return max(MIN_DELIVERY_LEASE, timedelta(seconds=mail.longest_send()) + LEASE_MARGIN)


def _delivery_take(delivery_id: str, now: datetime) -> bool:
    """The conditional UPDATE of a claim: queued or retrying, or sending under a lease that has run out. On
    PostgreSQL the lease is set and checked on the database's clock, so tasks on hosts whose clocks disagree still
    agree on it."""
    connection = connections[DEFAULT_DB_ALIAS]
    sql = _CLAIM_SQL.get(connection.vendor) or _CLAIM_SQL.setdefault(connection.vendor, _claim_sql(connection))
    at = InvitationDelivery._meta.get_field("updated_at")
    on_db_clock = _on_db_clock(connection)
    params = [
        DeliveryStatus.SENDING.value,
        delivery_lease() if on_db_clock else at.get_db_prep_save(now + delivery_lease(), connection),
        at.get_db_prep_save(now, connection),
        InvitationDelivery._meta.pk.get_db_prep_save(delivery_id, connection),
        DeliveryStatus.QUEUED.value,
        DeliveryStatus.RETRYING.value,
        DeliveryStatus.SENDING.value,
        *([] if on_db_clock else [at.get_db_prep_save(now, connection)]),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount == 1


def _delivery_set(delivery_id: str, **values) -> None:
    rows_update(InvitationDelivery, [{"id": delivery_id, **values}], list(values), using=DEFAULT_DB_ALIAS)


def _delivery_set_if_held(delivery: OutgoingEmail, **values) -> bool:
    """Write the outcome of this task's claim, unless another copy has claimed the delivery since (this one's lease
    ran out mid-send): the claim count is the fence. False when it has, and nothing was written."""
    held = InvitationDelivery.objects.filter(
        pk=delivery.id, attempts=delivery.attempts, status=DeliveryStatus.SENDING.value
    )
    return held.update(**values) == 1


def _delivery_metadata(delivery: OutgoingEmail) -> EventMetadata:
    return EventMetadata(correlation_id=delivery.organization_id, step=f"email.{delivery.kind}")


def delivery_claim(*, delivery_id: str) -> Claim:
    """Take a delivery for sending and issue the token its email will carry.

    The claim is a conditional UPDATE, so of two copies of a task only one sends; the other sees the lease
    and waits, and then finds the delivery done. A lease left by a worker that died runs out. The claim, the
    read of what the email says and the `invitation.token_issued` append are one transaction.
    """
    now = timezone.now()
    with transaction.atomic():
        claimed = _delivery_take(delivery_id, now)
        delivery = outgoing_email(delivery_id)
        if delivery is None:
            return Claim("gone")
        if not claimed:
            if delivery.status in FINAL_DELIVERY_STATUSES:
                return Claim("done", delivery)
            left = (delivery.claimed_until - now).total_seconds() if delivery.claimed_until else 1.0
            return Claim("busy", delivery, retry_in=max(left, 0.5))
        if delivery.invitation_status != InvitationStatus.PENDING or delivery.expires_at <= now:
            state = delivery.invitation_status if delivery.invitation_status != InvitationStatus.PENDING else "expired"
            error = f"Not sent: the invitation is {state}."
            return Claim("done", delivery_mark_unsent(delivery=delivery, error=error, final=True))
        token = token_issue()
        events_append(
            stream_type=StreamType.INVITATION,
            stream_id=delivery.invitation_id,
            events=[
                NewEvent(
                    EventType.INVITATION_TOKEN_ISSUED,
                    {
                        "selector": token.selector,
                        "verifier_hash": token.verifier_hash,
                        "purpose": delivery.kind,
                        "delivery_id": delivery.id,
                    },
                )
            ],
            metadata=_delivery_metadata(delivery),
        )
    return Claim("send", delivery, token)


def delivery_mark_sent(*, delivery: OutgoingEmail, selector: str) -> OutgoingEmail:
    """Record the email as sent (row and `invitation.email_sent`, one transaction); returns the delivery as
    it now stands, which is what the workflow is told."""
    now = timezone.now()
    with transaction.atomic():
        held = _delivery_set_if_held(
            delivery,
            status=DeliveryStatus.SENT.value,
            sent_at=now,
            token_selector=selector,
            last_error="",
            claimed_until=None,
            updated_at=now,
        )
        if not held:
            log.warning("Delivery %s was taken over while this copy sent it; the other's outcome stands", delivery.id)
            return outgoing_email(delivery.id) or delivery
        events_append(
            stream_type=StreamType.INVITATION,
            stream_id=delivery.invitation_id,
            events=[
                NewEvent(
                    EventType.INVITATION_EMAIL_SENT,
                    {
                        "delivery_id": delivery.id,
                        "kind": delivery.kind,
                        "selector": selector,
                        "attempts": delivery.attempts,
                    },
                )
            ],
            metadata=_delivery_metadata(delivery),
        )
    return replace(delivery, status=DeliveryStatus.SENT.value, last_error="", claimed_until=None)


def delivery_mark_unsent(*, delivery: OutgoingEmail, error: str, final: bool) -> OutgoingEmail:
    """Record a failed attempt; the last one also records `invitation.email_failed`. Returns the delivery as it
    now stands."""
    now = timezone.now()
    status = DeliveryStatus.FAILED if final else DeliveryStatus.RETRYING
    with transaction.atomic():
        held = _delivery_set_if_held(
            delivery,
            status=status.value,
            failed_at=now if final else None,
            last_error=error,
            claimed_until=None,
            updated_at=now,
        )
        if not held:  # another copy holds or has finished the delivery: its outcome stands, this one's is moot
            return outgoing_email(delivery.id) or delivery
        if final:
            events_append(
                stream_type=StreamType.INVITATION,
                stream_id=delivery.invitation_id,
                events=[
                    NewEvent(
                        EventType.INVITATION_EMAIL_FAILED,
                        {
                            "delivery_id": delivery.id,
                            "kind": delivery.kind,
                            "attempts": delivery.attempts,
                            "error": error,
                        },
                    )
                ],
                metadata=_delivery_metadata(delivery),
            )
    return replace(delivery, status=status.value, last_error=error, claimed_until=None)


# Answers that asking again cannot change: the workflow has ended, or the report itself is refused (a limit).
# Anything else (a quota, a namespace failing over, credentials being rotated) is asked again later.
REPORT_FINAL = frozenset({RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT})


def delivery_report_rollback_unsafe(*, delivery: OutgoingEmail) -> DeliveryReport | None:
    """Signal a final delivery's outcome to the workflow waiting for it, once. `delivery` is the row as
    committed: as read by the claim, or as `delivery_mark_sent` / `_unsent` left it.

    Raises TemporalUnavailable so the caller can retry later; a workflow that has ended, or a report Temporal
    refuses for good, is not retried.
    """
    if delivery.status not in FINAL_DELIVERY_STATUSES or not delivery.notify_workflow_id:
        return None
    if delivery.reported_at is not None:
        # Told already (this is a redelivered or republished task): every repeat would count against the
        # workflow's limit of signals, which a large bootstrap could then reach.
        return None
    report = DeliveryReport(
        invitation_id=delivery.invitation_id,
        status=delivery.status,
        attempts=delivery.attempts,
        error=delivery.last_error,
        bootstrap_attempt=delivery.notify_attempt,
    )

    async def send(client: Client) -> None:
        await client.get_workflow_handle(delivery.notify_workflow_id).signal(DELIVERY_SIGNAL, report)

    try:
        temporal.run(send)
    except RPCError as exc:
        if exc.status not in REPORT_FINAL:
            raise TemporalUnavailable(str(exc)) from exc
        if exc.status == RPCStatusCode.NOT_FOUND:
            log.info("Workflow %s has ended; delivery %s not reported", delivery.notify_workflow_id, delivery.id)
        else:  # refused for good (a limit, a bad request): retrying forever would not change the answer
            log.error("Delivery %s: Temporal refused its report (%s); not retried", delivery.id, exc)
        report = None  # settled all the same: no one is left to tell, so the sweep must not keep publishing it
    _delivery_set(delivery.id, reported_at=timezone.now())
    return report


# --- Accept and decline (the acceptance pages) -------------------------------------------------------------


@dataclass(frozen=True)
class Acceptance:
    invitation: Invitation
    user: AbstractBaseUser
    created_user: bool


def _username_for(canonical: str) -> str:
    User = get_user_model()
    username = canonical[:150]
    if User._default_manager.filter(username=username).exists():
        username = f"{canonical[:140]}-{secrets.token_hex(4)}"
    return username


def _valid_invitation(selector: str) -> Invitation:
    check = selector_check(selector)
    if not check.valid:
        raise InvitationUnavailable(check.state)
    return check.invitation


def role_granted_event(invitation: Invitation) -> NewEvent:
    """Granting the invited role: the same event (and key) from the view and from the workflow."""
    return NewEvent(
        EventType.USER_ROLE_GRANTED,
        {
            "organization_id": str(invitation.organization_id),
            "role": invitation.role,
            "invitation_id": str(invitation.pk),
        },
        idempotency_key=f"invitation/{invitation.pk}/role_granted",
    )


def invitation_accept(
    *,
    selector: str,
    user: AbstractBaseUser | None = None,
    first_name: str = "",
    last_name: str = "",
    password: str | None = None,
) -> Acceptance:
    """Accept an invitation: as the logged-in `user` (whose email must be the invited one), or as a new
    account created with `password` (hashed by Django's password machinery). One transaction: the account,
    its role and the acceptance are recorded together or not at all. The workflow hears of it after commit."""

    def accept() -> Acceptance:
        invitation = _valid_invitation(selector)
        metadata = _metadata(invitation, "accept", user.pk if user else None)
        if user is not None:
            if canonical_email(user.email or "") != invitation.email_canonical:
                raise AccountMismatch("This invitation was sent to another email address.")
            account, created = user, False
        else:
            if user_for_email(invitation.email) is not None:
                raise AccountExists("An account with this email address exists: log in to accept.")
            if not password:
                raise InvalidInvitationData("Choose a password.")
            account = get_user_model()._default_manager.create_user(
                username=_username_for(invitation.email_canonical),
                email=invitation.email,
                password=password,
                first_name=first_name.strip()[:150],
                last_name=last_name.strip()[:150],
            )
            created = True
            events_append(
                stream_type=StreamType.USER,
                stream_id=account.pk,
                events=[
                    NewEvent(
                        EventType.USER_CREATED,
                        {
                            "email": invitation.email,
                            "email_canonical": invitation.email_canonical,
                            "first_name": account.first_name,
                            "last_name": account.last_name,
                            "invitation_id": str(invitation.pk),
                        },
                        idempotency_key=f"invitation/{invitation.pk}/user_created",
                    )
                ],
                expected_version=0,
                metadata=metadata,
                created_by_id=account.pk,
            )
        events_append(
            stream_type=StreamType.USER,
            stream_id=account.pk,
            events=[role_granted_event(invitation)],
            metadata=metadata,
            created_by_id=account.pk,
        )
        _append(
            invitation,
            NewEvent(
                EventType.INVITATION_ACCEPTED,
                {"user_id": account.pk, "new_user": created},
                idempotency_key=f"invitation/{invitation.pk}/accepted",
            ),
            metadata,
            by=account.pk,
        )
        _signal_on_commit(invitation.pk, ACCEPTED_SIGNAL, InvitationAccepted(user_id=account.pk))
        invitation.refresh_from_db()
        return Acceptance(invitation, account, created)

    return _retry_on_conflict(accept)


def invitation_decline(*, selector: str, reason: str = "") -> Invitation:
    def decline() -> Invitation:
        invitation = _valid_invitation(selector)
        _append(
            invitation,
            NewEvent(EventType.INVITATION_DECLINED, {"reason": reason[:200]}),
            _metadata(invitation, "decline"),
        )
        _signal_on_commit(invitation.pk, DECLINED_SIGNAL, InvitationClosed(reason=reason[:200]))
        invitation.refresh_from_db()
        return invitation

    return _retry_on_conflict(decline)


# --- Support: resend and revoke ----------------------------------------------------------------------------


def invitation_resend(*, invitation_id: str, requested_by_id: int | None = None) -> InvitationDelivery | None:
    """Email a pending invitation again with a new token (the old link then says a newer invitation was
    sent) and a fresh expiry. Returns the delivery, or None if the invitation is not pending."""

    def resend() -> InvitationDelivery | None:
        invitation = Invitation.objects.get(pk=invitation_id)
        if invitation.status != InvitationStatus.PENDING:
            return None
        expires_at = (timezone.now() + timedelta(seconds=settings.INVITATION_TTL)).isoformat()
        _append(
            invitation,
            NewEvent(EventType.INVITATION_RESENT, {"expires_at": expires_at, "requested_by_id": requested_by_id}),
            _metadata(invitation, "resend", requested_by_id),
            by=requested_by_id,
        )
        now = timezone.now()
        delivery = InvitationDelivery.objects.create(
            id=uuid.uuid4(),
            invitation=invitation,
            kind=DeliveryKind.RESEND,
            requested_by_id=requested_by_id,
            queued_at=now,
            updated_at=now,
        )
        deliveries_enqueue_on_commit([delivery.pk])
        _signal_on_commit(invitation.pk, RESENT_SIGNAL, InvitationResent(expires_at=expires_at))
        return delivery

    return _retry_on_conflict(resend)


def invitation_revoke(
    *,
    invitation_id: str,
    reason: str,
    requested_by_id: int | None = None,
    metadata: EventMetadata | None = None,
    idempotency_key: str | None = None,
    signal: bool = True,
) -> bool:
    """Revoke a pending invitation and (after commit) end its workflow. False if it was not pending
    (already revoked, accepted...): revoking is idempotent."""

    def revoke() -> bool:
        invitation = Invitation.objects.get(pk=invitation_id)
        if invitation.status != InvitationStatus.PENDING:
            return False
        _append(
            invitation,
            NewEvent(
                EventType.INVITATION_REVOKED,
                {"reason": reason[:200], "requested_by_id": requested_by_id},
                idempotency_key=idempotency_key,
            ),
            metadata or _metadata(invitation, "revoke", requested_by_id),
            by=requested_by_id,
        )
        if signal:
            _signal_on_commit(invitation.pk, REVOKED_SIGNAL, InvitationClosed(reason=reason[:200]))
        return True

    return _retry_on_conflict(revoke)


def invitations_revoke_pending(
    *, organization_id: str, reason: str, key_prefix: str, metadata: EventMetadata
) -> list[str]:
    """Revoke every pending invitation of an organization and take back the roles its accepted ones granted
    (the bootstrap's compensation: invitees may accept while it waits for the emails); idempotent.

    Each revocation commits on its own. Pending ones go first, so no acceptance can follow the roles' revoke.
    Then every revoked invitation's workflow is told, including those revoked by an earlier try of this step
    that may have stopped before signalling (repeats are harmless). Returns the invitations revoked by this
    call."""
    pending = Invitation.objects.filter(organization_id=organization_id, status=InvitationStatus.PENDING)
    revoked = [
        str(invitation_id)
        for invitation_id in pending.values_list("pk", flat=True)
        if invitation_revoke(
            invitation_id=invitation_id,
            reason=reason,
            requested_by_id=metadata.acting_user_id,
            metadata=metadata,
            idempotency_key=f"{key_prefix}/{invitation_id}",
            signal=False,
        )
    ]
    for membership in Membership.objects.filter(organization_id=organization_id):
        events_append(
            stream_type=StreamType.USER,
            stream_id=membership.user_id,
            events=[
                NewEvent(
                    EventType.USER_ROLE_REVOKED,
                    {"organization_id": str(organization_id), "role": membership.role, "reason": reason[:200]},
                    idempotency_key=f"{key_prefix}/role/{membership.user_id}",
                )
            ],
            metadata=metadata,
        )
    # This step's revocations, from any try of it (by their keys): not those of an earlier bootstrap attempt,
    # whose workflows ended long ago (past Temporal's retention, signal-with-start would start them again).
    all_revoked = Invitation.objects.filter(organization_id=organization_id, status=InvitationStatus.REVOKED)
    keys = [f"{key_prefix}/{pk}" for pk in all_revoked.values_list("pk", flat=True)]
    by_this_step = [event.stream_id for event in events_for_keys(keys=keys).values()]
    closed = InvitationClosed(reason=reason[:200])
    _signal_many_rollback_unsafe([(str(pk), REVOKED_SIGNAL, closed) for pk in by_this_step])
    return revoked


# --- The lifecycle workflow's steps -------------------------------------------------------------------------


def invitation_provision(*, invitation_id: str, user_id: int, metadata: EventMetadata) -> Invitation:
    """The workflow's durable check after an acceptance: the account exists and holds the invited role.
    Re-appends the role grant under the key the acceptance used, which is a no-op when it is stored."""
    invitation = Invitation.objects.get(pk=invitation_id)
    if invitation.status != InvitationStatus.ACCEPTED or invitation.accepted_by_id != user_id:
        raise InvalidInvitationData(f"Invitation {invitation_id} was not accepted by user {user_id}.")
    if not get_user_model()._default_manager.filter(pk=user_id).exists():
        raise InvalidInvitationData(f"User {user_id} of invitation {invitation_id} does not exist.")
    events_append(
        stream_type=StreamType.USER, stream_id=user_id, events=[role_granted_event(invitation)], metadata=metadata
    )
    return invitation


def invitation_remind(*, invitation_id: str, scope: str, metadata: EventMetadata) -> bool:
    """Queue the one reminder email if the invitation is still pending. Safe to repeat with one `scope`."""

    def remind() -> bool:
        invitation = Invitation.objects.get(pk=invitation_id)
        if invitation.status != InvitationStatus.PENDING or invitation.expires_at <= timezone.now():
            return False
        delivery_id = delivery_id_for(f"{scope}/reminder")
        key = f"{scope}/reminded"
        if events_for_keys(keys=[key]):
            # A retry: the first run committed, but its publish after the commit may have failed. Publish again:
            # a task for a reminder already sent finds it done.
            deliveries_enqueue_on_commit([delivery_id])
            return True
        now = timezone.now()
        _, created = InvitationDelivery.objects.get_or_create(
            id=delivery_id,
            defaults={"invitation": invitation, "kind": DeliveryKind.REMINDER, "queued_at": now, "updated_at": now},
        )
        _append(
            invitation,
            NewEvent(EventType.INVITATION_REMINDED, {"delivery_id": str(delivery_id)}, idempotency_key=key),
            metadata,
        )
        deliveries_enqueue_on_commit([delivery_id])
        return True

    return _retry_on_conflict(remind)


def invitation_expire(*, invitation_id: str, key: str, metadata: EventMetadata) -> Invitation:
    """Record `invitation.expired` if it is pending and past its expiry; otherwise leave it as it is."""

    def expire() -> Invitation:
        invitation = Invitation.objects.get(pk=invitation_id)
        if invitation.status == InvitationStatus.PENDING and invitation.expires_at <= timezone.now():
            _append(invitation, NewEvent(EventType.INVITATION_EXPIRED, {}, idempotency_key=key), metadata)
            invitation.refresh_from_db()
        return invitation

    return _retry_on_conflict(expire)
