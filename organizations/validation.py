"""Rules for an organization's name, type and subdomain, shared by the forms, the API serializers and the services."""

import re
import unicodedata

from django.conf import settings
from django.core.exceptions import ValidationError

from .models import OrganizationType
from .selectors import subdomain_in_use

_NOT_IN_LABEL = re.compile(r"[^a-z0-9-]")

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
    """Format and reservation only; availability is `check_subdomain_available` (it changes over time).

    Every problem is reported at once, so a person fixes them in one go rather than one per try."""
    value = (subdomain or "").strip()
    problems = []
    if value != value.lower():
        problems.append(ValidationError("Use lowercase letters only.", code="case"))
    if others := list(dict.fromkeys(_NOT_IN_LABEL.findall(value.lower()))):
        shown = ", ".join(f"“{c}”" for c in others)
        problems.append(ValidationError(f"Letters, digits and hyphens only: remove {shown}.", code="characters"))
    if not 3 <= len(value) <= 63:
        problems.append(
            ValidationError(f"A subdomain is 3 to 63 characters long; this one has {len(value)}.", code="length")
        )
    if value.startswith("-") or value.endswith("-"):
        problems.append(ValidationError("Start and end with a letter or digit, not a hyphen.", code="edges"))
    if value.lower() in {s.lower() for s in settings.RESERVED_SUBDOMAINS}:
        problems.append(ValidationError(f"“{value}” is reserved; choose another subdomain.", code="reserved"))
    if problems:
        raise ValidationError(problems)
    return value


def check_subdomain_available(subdomain: str, *, exclude_id=None) -> None:
    if subdomain_in_use(subdomain, exclude_id=exclude_id):
        raise SubdomainTaken(
            f"“{subdomain}” is already used by an organization that is pending or active.", code="taken"
        )
