"""Errors of the invitation services. Messages are safe to show: they never hold a token."""

from django.core.exceptions import ValidationError


class InvitationError(Exception):
    """An invitation operation that cannot be carried out."""


class InvalidInvitationData(InvitationError, ValueError):
    """Bad input (an organization, an invitation, a user that does not fit): retrying cannot help."""


class InvalidInvitees(ValidationError, InvalidInvitationData):
    """Bad invitees, keyed "invitees" and "invitees.<index>.<field>"; nothing was written.

    `str()` reads "invitee 2: <message>; ..." for logs and workflow failures."""

    def __str__(self) -> str:
        parts = []
        for key, messages in self.message_dict.items():
            where = key.split(".")
            label = f"invitee {int(where[1]) + 1}" if len(where) == 3 else where[0]
            parts += [f"{label}: {message.rstrip('.')}" for message in messages]
        return "; ".join(parts)


class AlreadyInvited(InvalidInvitees):
    """An invitee already has a pending invitation to the organization, or already belongs to it."""


class OrganizationNotActive(InvitationError):
    """Only an active organization takes new invitations outside its bootstrap."""


class InvitationUnavailable(InvitationError):
    def __init__(self, state: str):
        self.state = state
        super().__init__(f"This invitation cannot be used: {state}.")


class AccountExists(InvitationError):
    """The invited address already has an account: its owner must log in and confirm."""


class AccountMismatch(InvitationError):
    """The logged-in account's email is not the invited one."""
