"""The one catalogue of domain event types, stream types and payload schema versions.

Event types are named `<aggregate>.<past_participle>`. Call sites use these constants, never free strings,
and the append service refuses anything that is not listed here.
"""

import re
from collections.abc import Callable
from enum import StrEnum

EVENT_TYPE_PATTERN = re.compile(r"^[a-z][a-z_]*\.[a-z][a-z_]*$")


class StreamType(StrEnum):
    ORGANIZATION = "organization"
    INVITATION = "invitation"
    USER = "user"


class EventType(StrEnum):
    # Organization lifecycle.
    ORGANIZATION_CREATED = "organization.created"
    ORGANIZATION_ACTIVATED = "organization.activated"
    ORGANIZATION_DEACTIVATED = "organization.deactivated"
    # Bootstrap steps, in the order the workflow takes them.
    ORGANIZATION_BOOTSTRAP_RESTARTED = "organization.bootstrap_restarted"
    ORGANIZATION_DNS_CONFIGURED = "organization.dns_configured"
    ORGANIZATION_DNS_VERIFIED = "organization.dns_verified"
    ORGANIZATION_INVITATIONS_SENT = "organization.invitations_sent"
    # Compensation.
    ORGANIZATION_DNS_REMOVED = "organization.dns_removed"
    ORGANIZATION_BOOTSTRAP_FAILED = "organization.bootstrap_failed"
    # Invitations.
    INVITATION_CREATED = "invitation.created"
    INVITATION_RESENT = "invitation.resent"
    # A token (selector and verifier hash only) issued just before an email carrying it is sent.
    INVITATION_TOKEN_ISSUED = "invitation.token_issued"  # noqa: S105  an event name, not a secret
    INVITATION_EMAIL_SENT = "invitation.email_sent"
    INVITATION_EMAIL_FAILED = "invitation.email_failed"
    INVITATION_REMINDED = "invitation.reminded"
    INVITATION_ACCEPTED = "invitation.accepted"
    INVITATION_DECLINED = "invitation.declined"
    INVITATION_REVOKED = "invitation.revoked"
    INVITATION_EXPIRED = "invitation.expired"
    # Users and their roles.
    USER_CREATED = "user.created"
    USER_ROLE_GRANTED = "user.role_granted"
    # A failed bootstrap takes back the roles its invitations granted (compensation).
    USER_ROLE_REVOKED = "user.role_revoked"


# Payload schema version written for new events. Bump it when a payload changes shape and register an
# upcaster from the old version, so stored events are read in the current shape.
SCHEMA_VERSIONS: dict[str, int] = {}

Upcaster = Callable[[dict], dict]
_UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def schema_version(event_type: str) -> int:
    return SCHEMA_VERSIONS.get(event_type, 1)


def register_upcaster(event_type: EventType, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register a function that turns a payload of `from_version` into `from_version + 1`."""

    def decorator(fn: Upcaster) -> Upcaster:
        _UPCASTERS[(str(event_type), from_version)] = fn
        return fn

    return decorator


def upcast(event_type: str, version: int, data: dict) -> dict:
    target = schema_version(event_type)
    while version < target:
        data = _UPCASTERS[(event_type, version)](data)
        version += 1
    return data
