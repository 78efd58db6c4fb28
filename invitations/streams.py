"""Appending to an invitation's stream under optimistic concurrency, shared by the invitation services.

Status changes are check-then-act: the decision is taken on the projection row and appended with that row's version
as the expected stream version, so a concurrent change makes the append fail and the decision is taken again (row
locks would deadlock against the append lock the projector already runs under).
"""

import hashlib
import uuid
from collections.abc import Callable

from django.db import IntegrityError, transaction

from eventstore.catalogue import StreamType
from eventstore.events import EventMetadata, NewEvent
from eventstore.exceptions import ConcurrencyError
from eventstore.services import events_append

from .models import Invitation

CONFLICT_RETRIES = 5


def email_key(canonical: str) -> str:
    """Stable, short and PII-free stand-in for an address in idempotency keys."""
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def retry_on_conflict[T](fn: Callable[[], T]) -> T:
    """Run `fn` in a transaction; if another writer moved the stream (or won a unique race), decide again."""
    for attempt in range(CONFLICT_RETRIES):
        try:
            with transaction.atomic():
                return fn()
        except (ConcurrencyError, IntegrityError):
            if attempt == CONFLICT_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def invitation_append(invitation: Invitation, event: NewEvent, metadata: EventMetadata, *, by: int | None = None):
    return events_append(
        stream_type=StreamType.INVITATION,
        stream_id=invitation.pk,
        events=[event],
        expected_version=invitation.version,
        metadata=metadata,
        created_by_id=by,
    )


def invitation_metadata(
    invitation: Invitation, step: str, acting_user_id: int | None = None, *, causation_id: str = ""
) -> EventMetadata:
    """Metadata of an event a person's action causes (accept, decline, resend, revoke): the action is the cause."""
    return EventMetadata(
        correlation_id=str(invitation.organization_id),
        causation_id=causation_id or f"command:{step}/{uuid.uuid4()}",
        step=step,
        acting_user_id=acting_user_id,
    )
