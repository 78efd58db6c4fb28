"""What a person new to the product meets in the admin: breadcrumbs styled like Django's own pages, help text that
reads as written, every problem with a subdomain at once, people named as people, and no link that leads nowhere."""

import re
import uuid

import pytest
from django.contrib.auth.models import Permission, User
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from invitations.payloads import Invitee
from onboarding.models import OnboardingRequest
from organizations.validation import validate_subdomain
from tests.invitations.helpers import accept_new, invitation_link_token, open_link
from tests.onboarding.test_admin_and_api import API, changelist, make_request, payload, staff
from tests.support.organizations import organization_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def support(client):
    client.force_login(staff("support", can_bootstrap=True))
    return client

# Django 6.1's breadcrumbs (admin/base.html, change_list.html): the only markup its stylesheet styles.
BREADCRUMBS = re.compile(
    r'<nav aria-label="Breadcrumbs">\s*<ol class="breadcrumbs">'
    r'(?P<links>(?:\s*<li>(?:<a href="[^"]+">[^<]+</a>|[^<]+)</li>)+)'
    r'\s*<li aria-current="page">(?P<current>[^<]+)</li>\s*</ol>\s*</nav>'
)


def _breadcrumbs(response) -> re.Match:
    assert response.status_code == 200, response.status_code
    html = response.content.decode()
    assert 'div class="breadcrumbs"' not in html
    found = BREADCRUMBS.search(html)
    assert found, re.search(r"<nav aria-label=\"Breadcrumbs\">.*?</nav>", html, re.S)
    return found


def _links(found: re.Match) -> list[tuple[str, str]]:
    return re.findall(r'<li><a href="([^"]+)">([^<]+)</a></li>', found["links"])


def test_the_products_admin_pages_use_djangos_breadcrumb_markup(support):
    own = _breadcrumbs(support.get(reverse("admin:organizations_organization_changelist")))
    home = _links(own)[0]
    assert home == ("/admin/", "Home")

    organization = organization_make("Seaside Care", active=True)
    request = make_request(name="Lakeside Clinic")
    user = User.objects.get(username="support")
    user.user_permissions.add(Permission.objects.get(codename="invite_users"))
    organizations = reverse("admin:organizations_organization_changelist")

    invite = _breadcrumbs(support.get(reverse("admin:organizations_organization_invite", args=[organization])))
    change = reverse("admin:organizations_organization_change", args=[organization])
    app = ("/admin/organizations/", "Organizations")
    assert _links(invite) == [home, app, (organizations, "Organizations"), (change, "Seaside Care")]
    assert invite["current"] == "Invite users"

    status = _breadcrumbs(
        support.get(reverse("admin:organizations_organization_bootstrap", args=[request.organization_id]))
    )
    assert _links(status)[0] == home and (organizations, "Organizations") in _links(status)
    assert "Lakeside Clinic" in status.group(0) and status["current"] == "Bootstrap"

    confirm = support.post(changelist(), {"action": "bootstrap_organization", "_selected_action": [request.pk]})
    confirmation = _breadcrumbs(confirm)
    onboarding_requests = reverse("admin:onboarding_onboardingrequest_changelist")
    assert _links(confirmation)[0] == home and _links(confirmation)[-1][0] == onboarding_requests
    assert confirmation["current"] == "Bootstrap organizations"


def test_the_subdomain_help_text_reads_as_written_with_the_base_domain(support, settings):
    settings.DNS_BASE_DOMAIN = "clinics.example.test"
    page = support.get(reverse("admin:onboarding_onboardingrequest_add")).content.decode()
    help_text = re.search(r'<div class="help"[^>]*id="id_subdomain_helptext"[^>]*>(.*?)</div>', page, re.S)
    assert help_text, "no help text for the subdomain"
    assert "becomes &lt;subdomain&gt;.clinics.example.test" in help_text[1]
    assert "<subdomain>" not in page


@pytest.mark.parametrize(
    ("subdomain", "codes"),
    [
        ("A!", ["case", "characters", "length"]),
        ("-Bad_Name-", ["case", "characters", "edges"]),
        ("Admin", ["case", "reserved"]),
        ("a" * 64, ["length"]),
        ("-dash", ["edges"]),
        ("", ["length"]),
    ],
)
def test_every_problem_with_a_subdomain_is_reported_at_once(subdomain, codes):
    with pytest.raises(ValidationError) as caught:
        validate_subdomain(subdomain)
    assert [error.code for error in caught.value.error_list] == codes


def test_the_subdomain_messages_say_what_to_change():
    with pytest.raises(ValidationError) as caught:
        validate_subdomain("A!")
    assert caught.value.messages == [
        "Use lowercase letters only.",
        "Letters, digits and hyphens only: remove “!”.",
        "A subdomain is 3 to 63 characters long; this one has 2.",
    ]
    assert validate_subdomain(" clinic-7 ") == "clinic-7"


def test_the_admin_form_and_the_api_show_all_of_a_subdomains_problems_together(support, temporal_env):
    form = {"name": "Lakeside Clinic", "type": "provider", "subdomain": "A!", "parent": ""}
    form |= {"invitees-TOTAL_FORMS": "1", "invitees-INITIAL_FORMS": "0", "invitees-MIN_NUM_FORMS": "1"}
    form |= {"invitees-MAX_NUM_FORMS": "1000", "invitees-0-email": "lee@example.test"}
    form |= {"invitees-0-role": "organization_admin"}
    page = support.post(reverse("admin:onboarding_onboardingrequest_add"), form).content.decode()
    for message in ("Use lowercase letters only.", "remove “!”", "3 to 63 characters long; this one has 2"):
        assert message in page, message

    response = support.post(API, payload(subdomain="A!"), content_type="application/json")
    assert response.status_code == 400
    assert len(response.json()["subdomain"]) == 3
    assert not OnboardingRequest.objects.exists()


def test_the_organization_page_names_its_members_as_people(support, temporal_env):
    organization = organization_make("Seaside Care", active=True)
    browser = Client()
    invitee = Invitee(email="ada@example.org", first_name="Ada", last_name="Lovelace", role="organization_admin")
    open_link(browser, invitation_link_token(organization, invitee))
    assert accept_new(browser, first_name="Ada", last_name="Lovelace").status_code == 200

    from invitations.models import Membership

    membership = Membership.objects.get(organization_id=organization)
    assert str(membership) == "Ada Lovelace <ada@example.org> — Organization admin"
    User.objects.get(username="support").user_permissions.add(Permission.objects.get(codename="view_membership"))
    page = support.get(reverse("admin:organizations_organization_change", args=[organization])).content.decode()
    members = re.search(r'id="memberships-group".*?</table>', page, re.S)
    assert members, "no members on the organization's page"
    # The row's label, and the member column beside the role.
    assert "Ada Lovelace &lt;ada@example.org&gt; — Organization admin" in members[0]
    assert re.search(r'<td class="field-member">\s*<p>Ada Lovelace &lt;ada@example.org&gt;</p>', members[0])
    assert " as organization_admin in " not in page


def test_a_membership_of_a_user_without_a_name_or_whose_account_is_gone_still_reads_well(temporal_env):
    from invitations.models import Membership

    organization = organization_make("Seaside Care", active=True)
    open_link(browser := Client(), invitation_link_token(organization, Invitee(email="bo@example.org", role="staff")))
    assert accept_new(browser).status_code == 200
    membership = Membership.objects.get(organization_id=organization)
    assert str(membership) == "bo@example.org — Staff"  # the username is the address: said once
    # No database constraint holds the user: a membership may outlive its account.
    assert str(Membership(user_id=membership.user_id + 1000, role="clinician")) == (
        f"Deleted user {membership.user_id + 1000} — Clinician"
    )


def test_the_api_docs_send_a_visitor_to_the_admin_login_and_back():
    anonymous = Client().get("/api/docs/")
    assert anonymous.status_code == 302
    assert anonymous["Location"] == "/admin/login/?next=/api/docs/"

    password = "pw-" + uuid.uuid4().hex
    User.objects.create_user("visitor", "visitor@example.test", password)  # logged in, but not staff
    visitor = Client()
    visitor.login(username="visitor", password=password)
    assert visitor.get("/api/docs/")["Location"] == "/admin/login/?next=/api/docs/"

    User.objects.create_user("staffer", "staffer@example.test", password, is_staff=True)
    staff = Client()
    login = staff.post(anonymous["Location"], {"username": "staffer", "password": password, "next": "/api/docs/"})
    assert login.status_code == 302 and login["Location"] == "/api/docs/"
    assert staff.get(login["Location"]).status_code == 200


def test_the_admin_has_no_view_site_link_to_a_missing_page(support):
    index = support.get(reverse("admin:index"))
    assert index.status_code == 200
    assert index.context["site_url"] is None
    assert b"View site" not in index.content
