"""Acceptance (invitations.acceptance and its forms): what a new account may be called."""

import pytest

pytestmark = pytest.mark.django_db


def test_a_new_account_name_with_a_line_break_is_refused():
    from invitations.forms import NewAccountForm

    password = "a long enough password 42"
    data = {"first_name": "Ada\nBcc: x@example.org", "last_name": "Love\u2028lace", "password1": password}
    form = NewAccountForm(data={**data, "password2": password}, email="ada@example.org")
    assert not form.is_valid()
    assert set(form.errors) == {"first_name", "last_name"}
