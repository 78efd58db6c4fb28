"""Rules for what may be bootstrapped, shared by the admin forms, the API serializers and the services."""

import re
import unicodedata
from collections.abc import Iterable, Mapping

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from invitations.emails import MAX_EMAIL_LENGTH, canonical_email, email_too_long
from invitations.payloads import Role

from .models import OrganizationType
from .selectors import subdomain_in_use

SUBDOMAIN_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]{1,61}[a-z0-9])$")

# A line break in an organization's name makes every email about it fail (Django refuses such a subject);
# control and format characters (a bidi override) can disguise what a name reads as. ZWNJ and ZWJ stay
# allowed: Persian, Indic scripts and emoji sequences need them to spell names.
_CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
_JOINERS = frozenset({"\u200c", "\u200d"})
CONTROL_CHARACTERS_MESSAGE = "The name cannot contain line breaks or control characters."


class SubdomainTaken(ValidationError):
    """The subdomain belongs to an organization that is pending or active (HTTP 409, not 400)."""


def validate_name(name: str) -> str:
    name = (name or "").strip()
    if not 1 <= len(name) <= 100:
        raise ValidationError("The name must be 1 to 100 characters.", code="length")
    if has_control_characters(name):
        raise ValidationError(CONTROL_CHARACTERS_MESSAGE, code="control_characters")
    return name


def has_control_characters(text: str) -> bool:
    return any(unicodedata.category(c) in _CONTROL_CATEGORIES and c not in _JOINERS for c in text)


def validate_type(value: str) -> str:
    if value not in OrganizationType.values:
        raise ValidationError(f"Choose one of: {', '.join(OrganizationType.values)}.", code="invalid_choice")
    return value


def validate_subdomain(subdomain: str) -> str:
    """Format and reservation only; availability is `check_subdomain_available` (it changes over time)."""
    value = (subdomain or "").strip()
    if value != value.lower():
        raise ValidationError("Use lowercase letters only.", code="case")
    if not SUBDOMAIN_PATTERN.match(value):
        raise ValidationError(
            "A subdomain is 3 to 63 characters of lowercase letters, digits and hyphens, "
            "starting and ending with a letter or digit.",
            code="format",
        )
    if value in {s.lower() for s in settings.RESERVED_SUBDOMAINS}:
        raise ValidationError(f"“{value}” is reserved; choose another subdomain.", code="reserved")
    return value


def check_subdomain_available(subdomain: str, *, exclude_id=None) -> None:
    if subdomain_in_use(subdomain, exclude_id=exclude_id):
        raise SubdomainTaken(
            f"“{subdomain}” is already used by an organization that is pending or active.", code="taken"
        )


def validate_invitees(invitees: Iterable[Mapping]) -> list[dict]:
    """Each invitee's email (valid, unique by canonical form) and role; at least one organization admin.

    Raises ValidationError with a dict: {"invitees": [...]} for list-wide problems and
    {"invitees.<index>.<field>": [...]} for one invitee's field.
    """
    invitees = list(invitees)
    if len(invitees) > settings.BOOTSTRAP_MAX_INVITEES:
        # The list travels in the workflow's input (Temporal refuses payloads over 2 MB) and each invitee's
        # email reports back by signal (Temporal caps signals per run): a list past the cap is refused whole.
        raise ValidationError(
            {
                "invitees": [
                    f"At most {settings.BOOTSTRAP_MAX_INVITEES} invitees per bootstrap; this list has {len(invitees)}."
                ]
            }
        )
    errors: dict[str, list[str]] = {}
    cleaned: list[dict] = []
    seen: dict[str, int] = {}
    for index, invitee in enumerate(invitees):
        email = (invitee.get("email") or "").strip()
        role = invitee.get("role") or Role.ORGANIZATION_ADMIN
        if email_too_long(email):
            errors.setdefault(f"invitees.{index}.email", []).append(
                f"An address may have at most {MAX_EMAIL_LENGTH} characters; this one has {len(email)}."
            )
        else:
            try:
                validate_email(email)
            except ValidationError:
                errors.setdefault(f"invitees.{index}.email", []).append(f"“{email}” is not a valid email address.")
            else:
                canonical = canonical_email(email)
                if canonical in seen:
                    errors.setdefault(f"invitees.{index}.email", []).append(
                        f"{email} is already invitee {seen[canonical] + 1} (addresses are compared case-insensitively)."
                    )
                seen.setdefault(canonical, index)
        if role not in Role.__members__.values():
            errors.setdefault(f"invitees.{index}.role", []).append(f"Choose one of: {', '.join(Role)}.")
        names = {field: (invitee.get(field) or "").strip() for field in ("first_name", "last_name")}
        for field, value in names.items():
            if has_control_characters(value):
                errors.setdefault(f"invitees.{index}.{field}", []).append(CONTROL_CHARACTERS_MESSAGE)
        cleaned.append({"email": email, **names, "role": role})
    if not cleaned:
        errors.setdefault("invitees", []).append("Add at least one invitee.")
    elif not any(i["role"] == Role.ORGANIZATION_ADMIN for i in cleaned):
        errors.setdefault("invitees", []).append("At least one invitee must have the organization admin role.")
    if errors:
        raise ValidationError(errors)
    return cleaned
