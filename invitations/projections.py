"""Projections of invitation and user events: `Invitation` + `InvitationToken`, and `Membership`.

Everything written here comes from the events (payload, stream version, created_at), so a rebuild from
position 0 reproduces the tables. Both apply a whole batch with bulk writes.
"""

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime

from eventstore.catalogue import EventType
from eventstore.events import PendingEvent, RecordedEvent
from eventstore.projections import AppendStatement, Projection, register
from eventstore.rows import rows_insert, rows_update

from . import projection_sql
from .models import DeliveryKind, EmailStatus, Invitation, InvitationStatus, InvitationToken, Membership

_MUTABLE_FIELDS = [
    f.name for f in Invitation._meta.concrete_fields if f.name not in ("id", "organization", "created_at")
]
# Namespace of membership ids: uuid5(namespace, "<organization id>:<user id>").
MEMBERSHIP_NAMESPACE = uuid.UUID("6f1d1c1e-8c1a-4d47-9a5e-0b8f3d2a7c41")


def membership_id(organization_id: str, user_id: int) -> uuid.UUID:
    return uuid.uuid5(MEMBERSHIP_NAMESPACE, f"{organization_id}:{user_id}")


def _created(event: PendingEvent, version: int | None = None) -> Invitation:
    """The new row; a pending event has no stream version yet, so its caller gives one (or the statement does)."""
    data = event.data
    return Invitation(
        id=event.stream_id,
        organization_id=data["organization_id"],
        email=data["email"],
        email_canonical=data["email_canonical"],
        first_name=data.get("first_name", ""),
        last_name=data.get("last_name", ""),
        role=data["role"],
        status=InvitationStatus.PENDING,
        email_status=EmailStatus.NOT_SENT,
        expires_at=datetime.fromisoformat(data["expires_at"]),
        invited_by_id=data.get("invited_by_id"),
        bootstrap_workflow_id=data.get("bootstrap_workflow_id", ""),
        created_at=event.created_at,
        updated_at=event.created_at,
        version=event.stream_version if version is None else version,
    )


def _resent(inv: Invitation, event: RecordedEvent) -> None:
    inv.expires_at = datetime.fromisoformat(event.data["expires_at"])
    # Earlier links are superseded now, not once the new email is sent: it may bounce, and a leaked link is why.
    inv.sent_token_version = max(inv.sent_token_version, event.stream_version)


def _email_sent(inv: Invitation, event: RecordedEvent, token: InvitationToken | None) -> None:
    inv.email_status = EmailStatus.SENT
    inv.emails_sent += 1
    inv.last_email_error = ""
    inv.last_emailed_at = event.created_at
    if token is not None:
        inv.sent_token_version = max(inv.sent_token_version, token.issued_version)


def _email_failed(inv: Invitation, event: RecordedEvent) -> None:
    # A failed reminder does not undo an invitation email that went out.
    if inv.email_status != EmailStatus.SENT or event.data.get("kind") != DeliveryKind.REMINDER:
        inv.email_status = EmailStatus.FAILED
    inv.last_email_error = event.data.get("error", "")


def _reminded(inv: Invitation, event: RecordedEvent) -> None:
    inv.reminded_at = event.created_at


def _close(status: str, stamp: str) -> Callable[[Invitation, RecordedEvent], None]:
    def apply(inv: Invitation, event: RecordedEvent) -> None:
        inv.status = status
        inv.status_reason = event.data.get("reason", "")[:200]
        setattr(inv, stamp, event.created_at)
        if status == InvitationStatus.ACCEPTED:
            inv.accepted_by_id = event.data["user_id"]

    return apply


_APPLY: dict[str, Callable[[Invitation, RecordedEvent], None]] = {
    EventType.INVITATION_RESENT: _resent,
    EventType.INVITATION_EMAIL_FAILED: _email_failed,
    EventType.INVITATION_REMINDED: _reminded,
    EventType.INVITATION_ACCEPTED: _close(InvitationStatus.ACCEPTED, "accepted_at"),
    EventType.INVITATION_DECLINED: _close(InvitationStatus.DECLINED, "declined_at"),
    EventType.INVITATION_REVOKED: _close(InvitationStatus.REVOKED, "revoked_at"),
    EventType.INVITATION_EXPIRED: _close(InvitationStatus.EXPIRED, "expired_at"),
}


class InvitationMissing(LookupError):
    pass


# Every email appends these two, one at a time: written without reading the row, to hold the lock for less.


def _token_row(event: RecordedEvent) -> dict:
    return {
        "selector": event.data["selector"],
        "invitation_id": event.stream_id,
        "verifier_hash": event.data["verifier_hash"],
        "issued_version": event.stream_version,
        "issued_at": event.created_at,
        "purpose": event.data.get("purpose", ""),
    }


def _one_token_issued(event: RecordedEvent, using: str) -> None:
    moved = {"id": event.stream_id, "version": event.stream_version, "updated_at": event.created_at}
    if not rows_update(Invitation, [moved], ["version", "updated_at"], using=using):
        raise InvitationMissing(f"{event.event_type} for unknown invitation {event.stream_id}.")
    rows_insert(InvitationToken, [_token_row(event)], using=using)


def _one_email_sent(event: RecordedEvent, using: str) -> None:
    # _email_sent in one UPDATE: the counter and the newest emailed token's version come from the row as it is.
    if not projection_sql.email_sent(event, EmailStatus.SENT, using=using):
        raise InvitationMissing(f"{event.event_type} for unknown invitation {event.stream_id}.")


_ONE = {EventType.INVITATION_TOKEN_ISSUED: _one_token_issued, EventType.INVITATION_EMAIL_SENT: _one_email_sent}


@register
class InvitationProjection(Projection):
    name = "invitations"
    handles = frozenset(
        {
            EventType.INVITATION_CREATED,
            EventType.INVITATION_TOKEN_ISSUED,
            EventType.INVITATION_EMAIL_SENT,
            *_APPLY,
        }
    )
    models = (InvitationToken, Invitation)
    reads_metadata = False

    def apply(self, events: Sequence[RecordedEvent], *, using: str) -> None:
        if len(events) == 1 and (one := _ONE.get(events[0].event_type)) is not None:
            one(events[0], using)
            return
        created_here = {e.stream_id for e in events if e.event_type == EventType.INVITATION_CREATED}
        wanted = {e.stream_id for e in events} - created_here
        rows = {str(pk): inv for pk, inv in Invitation.objects.using(using).in_bulk(wanted).items()} if wanted else {}
        selectors = {e.data["selector"] for e in events if e.event_type == EventType.INVITATION_EMAIL_SENT}
        tokens = InvitationToken.objects.using(using).in_bulk(selectors) if selectors else {}
        new: dict[str, Invitation] = {}
        changed: dict[str, Invitation] = {}
        new_tokens: list[InvitationToken] = []
        for event in events:
            if event.event_type == EventType.INVITATION_CREATED:
                rows[event.stream_id] = new[event.stream_id] = _created(event)
                continue
            inv = rows.get(event.stream_id)
            if inv is None:
                raise InvitationMissing(f"{event.event_type} for unknown invitation {event.stream_id}.")
            if event.event_type == EventType.INVITATION_TOKEN_ISSUED:
                token = InvitationToken(**_token_row(event))
                tokens[token.selector] = token
                new_tokens.append(token)
            elif event.event_type == EventType.INVITATION_EMAIL_SENT:
                _email_sent(inv, event, tokens.get(event.data["selector"]))
            else:
                _APPLY[event.event_type](inv, event)
            inv.version, inv.updated_at = event.stream_version, event.created_at
            if event.stream_id not in new:
                changed[event.stream_id] = inv
        manager = Invitation.objects.using(using)
        # No longer pending first, then other changes, then new rows: one pending invitation per address, by row.
        released = [inv for inv in changed.values() if inv.status != InvitationStatus.PENDING]
        for rows in (released, [inv for inv in changed.values() if inv.status == InvitationStatus.PENDING]):
            if len(rows) == 1:
                rows[0].save(using=using, update_fields=_MUTABLE_FIELDS)
            elif rows:
                manager.bulk_update(rows, _MUTABLE_FIELDS, batch_size=500)
        if new:
            manager.bulk_create(new.values())
        if new_tokens:
            InvitationToken.objects.using(using).bulk_create(new_tokens)

    def append_statement(self, events: Sequence[PendingEvent], *, using: str) -> AppendStatement | None:
        # Only the bootstrap's hot path: a new invitation appended on its own, outside a transaction.
        if len(events) != 1 or events[0].event_type != EventType.INVITATION_CREATED:
            return None
        return projection_sql.created(_created(events[0], version=0), using=using)


@register
class MembershipProjection(Projection):
    name = "memberships"
    handles = frozenset({EventType.USER_ROLE_GRANTED, EventType.USER_ROLE_REVOKED})
    models = (Membership,)
    reads_metadata = False

    def apply(self, events: Sequence[RecordedEvent], *, using: str) -> None:
        # Granting again (another role, another invitation) replaces the role; the first grant's time stays.
        # A revoke ends the membership; a grant after it starts a new one.
        latest: dict[uuid.UUID, Membership] = {}
        revoked: set[uuid.UUID] = set()
        for event in events:
            org_id, user_id = event.data["organization_id"], int(event.stream_id)
            pk = membership_id(org_id, user_id)
            if event.event_type == EventType.USER_ROLE_REVOKED:
                latest.pop(pk, None)
                revoked.add(pk)
                continue
            previous = latest.get(pk)
            latest[pk] = Membership(
                id=pk,
                organization_id=org_id,
                user_id=user_id,
                role=event.data["role"],
                invitation_id=event.data.get("invitation_id"),
                granted_at=previous.granted_at if previous else event.created_at,
                updated_at=event.created_at,
            )
        manager = Membership.objects.using(using)
        if revoked:
            manager.filter(pk__in=list(revoked)).delete()
        existing = {m.pk: m for m in manager.filter(pk__in=list(latest))}
        for pk, row in latest.items():
            if pk in existing:
                row.granted_at = existing[pk].granted_at
        manager.bulk_create([r for pk, r in latest.items() if pk not in existing])
        if updates := [r for pk, r in latest.items() if pk in existing]:
            manager.bulk_update(updates, ["role", "invitation_id", "updated_at"])
