"""Organization and invitee names hold no line breaks or control characters: a line break in an organization's
name would make every invitation email about it fail for good (Django refuses such a subject)."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from invitations.validation import invitees_validate
from onboarding.models import OnboardingRequest
from organizations.validation import validate_name
from tests.onboarding.test_admin_and_api import API, payload, support  # noqa: F401 (support is a fixture)

MESSAGE = "The name cannot contain line breaks or control characters."
FORBIDDEN = [
    "\n",  # line feed
    "\r",  # carriage return
    "\t",  # tab
    "\x00",  # NUL
    "\x85",  # next line (NEL)
    "\u2028",  # line separator
    "\u2029",  # paragraph separator
    "\u202e",  # right-to-left override
    "\u2066",  # left-to-right isolate
    "\ufeff",  # zero-width no-break space (BOM)
]


@pytest.mark.parametrize("character", FORBIDDEN, ids=lambda c: f"U+{ord(c):04X}")
def test_a_name_with_a_line_break_or_control_character_is_refused(character):
    with pytest.raises(ValidationError) as caught:
        validate_name(f"Sunrise{character}Pediatrics")
    assert caught.value.messages == [MESSAGE]
    assert caught.value.code == "control_characters"


@pytest.mark.parametrize("name", ["Sunrise Pediatrics", "Zoë & Søn, Ltd.", "مطب\u200cنیک", "Café 👩\u200d⚕️ Clinic"])
def test_ordinary_names_including_joiners_are_accepted(name):
    assert validate_name(f"  {name}\n") == name  # surrounding whitespace is trimmed, as before


@pytest.mark.parametrize("field", ["first_name", "last_name"])
@pytest.mark.parametrize("character", FORBIDDEN, ids=lambda c: f"U+{ord(c):04X}")
def test_an_invitee_name_with_a_line_break_or_control_character_is_refused(field, character):
    invitees = [
        {"email": "ok@example.test", "first_name": "Ada", "last_name": "Lovelace"},
        {"email": "bad@example.test", field: f"Ada{character}Lovelace"},
    ]
    with pytest.raises(ValidationError) as caught:
        invitees_validate(invitees, require_admin=True)
    assert caught.value.message_dict == {f"invitees.1.{field}": [MESSAGE]}


@pytest.mark.django_db
def test_api_refuses_a_name_with_a_line_separator_and_writes_nothing(support):  # noqa: F811
    body = payload(name="Sunrise\u2028Pediatrics")
    body["invitees"][0]["last_name"] = "Lee\u202eevil"
    response = support.post(API, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["name"] == [MESSAGE]
    assert response.json()["invitees"] == [{"last_name": [MESSAGE]}]
    assert not OnboardingRequest.objects.exists()


@pytest.mark.django_db
def test_the_admin_form_refuses_a_name_with_a_line_break(admin_client):
    form = {
        "name": "Hillside\nClinic",
        "type": "partner",
        "subdomain": "hillside",
        "invitees-TOTAL_FORMS": "1",
        "invitees-INITIAL_FORMS": "0",
        "invitees-MIN_NUM_FORMS": "1",
        "invitees-MAX_NUM_FORMS": "1000",
        "invitees-0-email": "kim@example.test",
        "invitees-0-first_name": "Ki\u0085m",  # NEL inside: the form trims it at the ends
        "invitees-0-role": "organization_admin",
    }
    response = admin_client.post(reverse("admin:onboarding_onboardingrequest_add"), form)
    assert response.status_code == 200
    assert response.content.decode().count(MESSAGE) == 2  # the name and the invitee's first name
    assert not OnboardingRequest.objects.exists()
