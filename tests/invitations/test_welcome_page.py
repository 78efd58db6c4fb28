"""The page an invitee sees after accepting leads on to the organization (INVITATION_WELCOME_URL)."""

import re

import pytest
from django.test import Client

from invitations.payloads import Invitee
from organizations.models import Organization

from .helpers import accept_new, act, invitation_link_token, open_link

pytestmark = pytest.mark.django_db


def _accept(organization_id: str) -> str:
    browser = Client()
    open_link(browser, invitation_link_token(organization_id, Invitee(email="ada@example.org", first_name="Ada")))
    done = accept_new(browser, first_name="Ada", last_name="Lovelace")
    assert done.status_code == 200, done.content.decode()
    return done.content.decode()


def test_the_welcome_page_links_to_the_organizations_domain(organization, temporal_env):
    domain = Organization.objects.get(pk=organization).domain
    html = _accept(organization)
    assert "Welcome to Harbor Health" in html
    assert f'<a class="next" href="https://{domain}/">Continue to Harbor Health</a>' in html


def test_an_existing_account_that_confirms_gets_the_link_too(organization, temporal_env):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user("bob", email="bob@example.org", password="bobs own password 1")
    browser = Client()
    open_link(browser, invitation_link_token(organization, Invitee(email="bob@example.org", role="clinician")))
    assert act(browser, "login", username="bob", password="bobs own password 1").status_code == 302
    done = act(browser, "accept")
    assert done.status_code == 200 and b"Welcome to Harbor Health" in done.content
    domain = Organization.objects.get(pk=organization).domain
    assert f'href="https://{domain}/">Continue to Harbor Health</a>'.encode() in done.content


def test_the_welcome_link_follows_the_setting(organization, temporal_env, settings):
    settings.INVITATION_WELCOME_URL = "https://care.example.test/start?org={subdomain}&at={domain}"
    subdomain = Organization.objects.get(pk=organization).subdomain
    html = _accept(organization)
    link = re.search(r'<a class="next" href="([^"]+)">Continue to Harbor Health</a>', html)
    domain = Organization.objects.get(pk=organization).domain
    assert link and link[1] == f"https://care.example.test/start?org={subdomain}&amp;at={domain}"  # as HTML escapes it


def test_no_welcome_link_when_the_setting_is_empty(organization, temporal_env, settings):
    settings.INVITATION_WELCOME_URL = ""
    html = _accept(organization)
    assert "Welcome to Harbor Health" in html and "Continue to" not in html
