"""A support person in a real browser: logs into the admin, asks for an organization, runs the
"Bootstrap organization" action and watches the status page until the organization is active. On the way, the
product's own pages look like the admin's (breadcrumbs) and fit a 1280 px screen (the event timeline)."""

import re
import uuid

import pytest
from django.contrib.auth.models import Permission, User

from onboarding.models import OnboardingRequest
from organizations.models import Organization

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


# The narrowest screen support works at: no admin page may scroll sideways on it.
VIEWPORT = {"width": 1280, "height": 800}

# How the admin's stylesheet dresses breadcrumbs; the product's pages must come out the same.
BREADCRUMB_STYLE = """() => {
    const ol = document.querySelector("nav[aria-label=Breadcrumbs] ol.breadcrumbs");
    const li = ol.querySelector("li"), ol_style = getComputedStyle(ol), li_style = getComputedStyle(li);
    return {background: ol_style.backgroundColor, color: ol_style.color, padding: ol_style.padding,
            display: li_style.display, fontSize: li_style.fontSize, separator: getComputedStyle(li, "::after").content};
}"""


def _support_page(live_server, browser, permissions):
    """A browser page signed into the admin as a staff user holding `permissions`."""
    password = "a-long-password-" + uuid.uuid4().hex
    user = User.objects.create_user("support", "support@example.test", password, is_staff=True)
    user.user_permissions.set(permissions)
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "support")
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    return page


def test_support_bootstraps_an_organization_from_the_admin(
    live_server, browser, local_dns, temporal_worker, mail_pipeline
):
    subdomain = f"harbor-{uuid.uuid4().hex[:6]}"

    # A long unbroken address, as hashes and ids are in the event data: the timeline must wrap it, not scroll.
    invitee = f"robin.{'x' * 50}@example.test"
    with temporal_worker():
        permissions = Permission.objects.filter(content_type__app_label__in=["organizations", "onboarding"])
        permissions |= Permission.objects.filter(content_type__app_label="eventstore", codename="view_event")
        page = _support_page(live_server, browser, permissions)
        page.goto(f"{live_server.url}/admin/organizations/organization/")
        admin_breadcrumbs = page.evaluate(BREADCRUMB_STYLE)
        page.goto(f"{live_server.url}/admin/onboarding/onboardingrequest/add/")
        page.fill("#id_name", "Harbor Family Health")
        page.select_option("#id_type", "provider")
        page.fill("#id_subdomain", subdomain)
        page.fill("#id_invitees-0-email", invitee)
        page.fill("#id_invitees-0-first_name", "Robin")
        page.select_option("#id_invitees-0-role", "organization_admin")
        page.click("input[name=_save]")
        page.wait_for_selector("text=was added successfully")

        page.check("input[name=_selected_action]")
        page.select_option("select[name=action]", "bootstrap_organization")
        page.click("button[name=index]")
        page.wait_for_selector("text=Yes, bootstrap 1 organization")
        confirmation_breadcrumbs = page.evaluate(BREADCRUMB_STYLE)
        page.click("text=Yes, bootstrap 1 organization")
        page.wait_for_selector("text=Started 1 bootstrap")

        request = OnboardingRequest.objects.get(subdomain=subdomain)
        page.click(f"a[href*='{request.organization_id}/bootstrap/']")
        # The status page refreshes itself; no reloads from the test.
        page.wait_for_selector('tr[data-step="activate_organization"][data-status="done"]', timeout=60_000)
        page.wait_for_selector(".workflow-status:text-is('completed')", timeout=60_000)  # no more refreshes
        heading = page.inner_text("#bootstrap-progress")
        status_breadcrumbs = page.evaluate(BREADCRUMB_STYLE)
        fits_closed = page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
        page.eval_on_selector_all(".timeline details", "all => all.forEach(d => { d.open = true; })")
        opened = page.eval_on_selector_all(".timeline details[open]", "all => all.length")
        fits_open = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")

    assert re.search(r"\bActive\b", heading)
    assert "organization.activated" in heading and "invitation.created" in heading
    assert Organization.objects.get(pk=request.organization_id).status == "active"
    assert confirmation_breadcrumbs == status_breadcrumbs == admin_breadcrumbs, admin_breadcrumbs
    assert fits_closed, "the status page scrolls sideways at 1280 px"
    assert opened > 0
    assert fits_open[0] <= fits_open[1], f"with the event data open the page is {fits_open[0]} px wide"


def test_support_invites_more_people_to_an_active_organization(live_server, browser, temporal_env, mail_pipeline):
    from invitations.models import Invitation
    from tests.support.organizations import organization_make

    active = organization_make("Seaside Care", active=True)
    page = _support_page(
        live_server,
        browser,
        Permission.objects.filter(codename__in=["view_organization", "invite_users", "view_invitation"]),
    )

    page.goto(f"{live_server.url}/admin/organizations/organization/{active}/change/")
    admin_breadcrumbs = page.evaluate(BREADCRUMB_STYLE)
    page.click("text=Invite users")
    page.wait_for_selector("#id_invitees-0-email")
    assert page.evaluate(BREADCRUMB_STYLE) == admin_breadcrumbs
    page.fill("#id_invitees-0-email", "kim@example.test")
    page.fill("#id_invitees-0-first_name", "Kim")
    page.select_option("#id_invitees-0-role", "staff")
    page.click("input[type=submit]")
    page.wait_for_selector("text=Invited 1 to Seaside Care")

    invitation = Invitation.objects.get(organization_id=active)
    assert (invitation.email, invitation.role, invitation.status) == ("kim@example.test", "staff", "pending")
    assert mail_pipeline.wait_for(1) and mail_pipeline.to("kim@example.test")
    # The organization's page now lists the invitation.
    assert "kim@example.test" in page.inner_text("body")
