"""An invitee in a real browser (headless Debian chromium): opens the link from the email that reached the
SMTP server, creates an account, and ends up logged in, holding the role, with a link on to the organization."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from invitations.models import Membership
from invitations.payloads import Invitee
from organizations.models import Organization
from tests.support.mail import LINK

from .helpers import fan_out

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]
PASSWORD = "a sturdy passphrase 9 for the browser"


def test_a_new_invitee_accepts_in_a_browser(
    settings, live_server, browser, organization, users_worker, celery_worker, smtp
):
    settings.INVITATION_BASE_URL = live_server.url
    fan_out(organization, [Invitee(email="robin@example.test", first_name="Robin", last_name="Hood", role="clinician")])
    (message,) = smtp.to("robin@example.test")
    link = LINK.search(smtp.text(message)).group(0)
    assert link.startswith(live_server.url)

    page = browser.new_page()
    response = page.goto(link)
    assert response.status == 200 and response.headers["referrer-policy"] == "same-origin"
    assert response.request.redirected_from.response().headers["referrer-policy"] == "no-referrer"
    assert page.url == f"{live_server.url}/invitations/accept/", "the token left the address bar"
    assert page.inner_text("h1") == "Join Harbor Health"
    assert page.input_value("#id_first_name") == "Robin"
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.click("text=Accept and create account")
    page.wait_for_selector("text=Welcome to Harbor Health")
    assert "You are logged in as robin@example.test" in page.inner_text("main")
    # The next step is in sight: on to the organization's own address.
    next_step = page.get_by_role("link", name="Continue to Harbor Health")
    assert next_step.is_visible()
    domain = Organization.objects.get(pk=organization).domain
    assert next_step.get_attribute("href") == f"https://{domain}/"

    user = get_user_model().objects.get(username="robin@example.test")
    assert (user.first_name, user.last_name) == ("Robin", "Hood")
    assert Client().login(username="robin@example.test", password=PASSWORD)
    assert Membership.objects.get(user=user, organization_id=organization).role == "clinician"
