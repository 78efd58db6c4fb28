"""The one validator of an invitee list, for every path that invites (a bootstrap's request, inviting people to an
active organization, the fan-out's generate step), and its one error shape.

Errors come as a django ValidationError whose dict is keyed "invitees" (the list as a whole) and
"invitees.<index>.<field>" (one invitee's field), every problem of every row at once. Entry points turn it into
their own shape: `invitations.serializers.api_errors` for the API, the formsets' add_error for the admin.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from organizations.validation import CONTROL_CHARACTERS_MESSAGE, has_control_characters

from .emails import MAX_EMAIL_LENGTH, canonical_email, email_too_long
from .exceptions import InvalidInvitees
from .payloads import Invitee, Role

MAX_NAME_LENGTH = 150


@dataclass(frozen=True, kw_only=True)
class ValidInvitee:
    email: str
    canonical: str
    first_name: str
    last_name: str
    role: Role

    def invitee(self) -> Invitee:
        return Invitee(email=self.email, first_name=self.first_name, last_name=self.last_name, role=self.role)


def _field(invitee: Invitee | Mapping, name: str) -> str:
    value = invitee.get(name) if isinstance(invitee, Mapping) else getattr(invitee, name, "")
    return str(value or "").strip()


def invitees_validate(
    invitees: Iterable[Invitee | Mapping],
    *,
    max_count: int | None = None,
    require_admin: bool = False,
    per: str = "request",
) -> list[ValidInvitee]:
    """Every invitee's email (valid, storable, unique by canonical form), names and role, checked before anything is
    written; raises InvalidInvitees with every problem at once."""
    invitees = list(invitees)
    if max_count is not None and len(invitees) > max_count:
        # The list travels in a workflow's input (Temporal refuses payloads over 2 MB) and each invitee's email
        # reports back by signal (Temporal caps signals per run): a list past the cap is refused whole.
        raise InvalidInvitees({"invitees": [f"At most {max_count} invitees per {per}; this list has {len(invitees)}."]})
    errors: dict[str, list[str]] = {}
    valid: list[ValidInvitee] = []
    seen: dict[str, int] = {}

    def refuse(index: int, field: str, message: str) -> None:
        errors.setdefault(f"invitees.{index}.{field}", []).append(message)

    for index, invitee in enumerate(invitees):
        email, role = _field(invitee, "email"), _field(invitee, "role") or Role.ORGANIZATION_ADMIN
        canonical = canonical_email(email)
        if email_too_long(email):
            n = MAX_EMAIL_LENGTH
            refuse(index, "email", f"The address is longer than {n} characters: at most {n} characters fit.")
        else:
            try:
                validate_email(email)
            except ValidationError:
                refuse(index, "email", f"{email!r} is not a valid email address.")
            else:
                if canonical in seen:
                    first = seen[canonical] + 1
                    refuse(
                        index,
                        "email",
                        f"{email} is already invitee {first} (addresses are compared case-insensitively).",
                    )
                seen.setdefault(canonical, index)
        if role not in Role.__members__.values():
            refuse(index, "role", f"Choose one of: {', '.join(Role)}.")
        names = {field: _field(invitee, field) for field in ("first_name", "last_name")}
        for field, value in names.items():
            if has_control_characters(value):
                refuse(index, field, CONTROL_CHARACTERS_MESSAGE)
            elif len(value) > MAX_NAME_LENGTH:
                refuse(index, field, f"A name may have at most {MAX_NAME_LENGTH} characters.")
        if role in Role.__members__.values():
            valid.append(ValidInvitee(email=email, canonical=canonical, role=Role(role), **names))
    if not invitees:
        errors.setdefault("invitees", []).append("Add at least one invitee.")
    elif require_admin and not any(_field(i, "role") in ("", Role.ORGANIZATION_ADMIN) for i in invitees):
        errors.setdefault("invitees", []).append("At least one invitee must have the organization admin role.")
    if errors:
        raise InvalidInvitees(errors)
    return valid
