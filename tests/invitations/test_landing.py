"""The landing page: the checked selector lives in a signed cookie of its own, and the per-process micro-cache
may only delay what a GET shows, never what a POST does."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client

from invitations import services
from invitations.cookie import COOKIE
from invitations.models import Invitation
from invitations.payloads import Invitee

from .helpers import accept_new, act, fan_out, open_link

pytestmark = pytest.mark.django_db(transaction=True)
CSRF_FIELD = re.compile(rb'name="csrfmiddlewaretoken" value="([A-Za-z0-9]+)"')


def csrf_token(response) -> str:
    tokens = set(CSRF_FIELD.findall(response.content))
    assert len(tokens) == 1, tokens
    return tokens.pop().decode()


def test_the_invitation_cookie_is_signed_scoped_and_holds_no_verifier(
    settings, organization, users_worker, celery_worker, smtp
):
    fan_out(organization, [Invitee(email="cookie@example.org")])
    token = smtp.token_for("cookie@example.org")
    selector, verifier = token.split(".")
    browser = Client(enforce_csrf_checks=True)
    moved = browser.get(f"/invitations/accept/{token}/")
    cookie = moved.cookies[COOKIE]
    assert verifier not in cookie.value and selector in cookie.value
    assert cookie["path"] == "/invitations/" and cookie["httponly"] and cookie["samesite"] == "Lax"
    assert bool(cookie["secure"]) == (not settings.DEBUG) and 0 < int(cookie["max-age"]) <= 3600
    first, second = browser.get("/invitations/accept/"), browser.get("/invitations/accept/")
    assert first.status_code == second.status_code == 200
    assert csrf_token(first) != csrf_token(second), "a cached page still gets a fresh CSRF token per response"
    assert "sessionid" not in browser.cookies and not Session.objects.exists(), "an anonymous invitee has no session"

    forged = Client()
    forged.cookies[COOKIE] = selector  # the selector alone, unsigned
    assert forged.get("/invitations/accept/").status_code == 404
    tampered = Client()
    tampered.cookies[COOKIE] = cookie.value.replace(selector, selector[::-1])
    assert tampered.get("/invitations/accept/").status_code == 404

    # Logging in and out keeps the invitation: it is not the session's.
    get_user_model().objects.create_user("other", email="other@example.org", password="others own password 1")
    browser.force_login(get_user_model().objects.get(username="other"))
    assert b"but this invitation is for cookie@example.org" in browser.get("/invitations/accept/").content
    page = browser.get("/invitations/accept/")
    assert browser.post("/invitations/accept/", {"action": "logout"}).status_code == 403, "CSRF is checked"
    logged_out = act(browser, "logout", csrfmiddlewaretoken=csrf_token(page))
    assert logged_out.status_code == 302
    page = browser.get("/invitations/accept/")
    assert b"Create your account" in page.content

    done = accept_new(browser, csrfmiddlewaretoken=csrf_token(page))
    assert done.status_code == 200 and done.cookies[COOKIE].value == "", "the cookie is dropped once used"


def test_a_revoked_invitation_shows_withdrawn_at_once_without_the_micro_cache(
    settings, organization, users_worker, celery_worker, smtp
):
    settings.INVITATION_LANDING_CACHE_TTL = 0
    (invitation_id,) = fan_out(organization, [Invitee(email="zero@example.org")]).invitation_ids
    browser = Client()
    assert open_link(browser, smtp.token_for("zero@example.org")).status_code == 200

    assert services.invitation_revoke(invitation_id=invitation_id, reason="Left")
    page = browser.get("/invitations/accept/")
    assert page.status_code == 410 and b"withdrawn" in page.content


def test_within_the_ttl_a_post_still_refuses_a_revoked_invitation_and_the_page_catches_up_after_it(
    settings, organization, users_worker, celery_worker, smtp
):
    settings.INVITATION_LANDING_CACHE_TTL = 300
    (invitation_id,) = fan_out(organization, [Invitee(email="late@example.org")]).invitation_ids
    browser = Client()
    assert open_link(browser, smtp.token_for("late@example.org")).status_code == 200

    assert services.invitation_revoke(invitation_id=invitation_id, reason="Left")
    # Within the TTL this process may still show its copy of the page: the documented trade-off...
    assert browser.get("/invitations/accept/").status_code == 200
    # ...but every POST reads the database.
    refused = accept_new(browser)
    assert refused.status_code == 410 and b"withdrawn" in refused.content
    assert act(browser, "decline").status_code == 410
    assert not get_user_model().objects.exists()
    assert Invitation.objects.get(pk=invitation_id).status == "revoked"

    settings.INVITATION_LANDING_CACHE_TTL = 0  # the TTL has passed
    page = browser.get("/invitations/accept/")
    assert page.status_code == 410 and b"withdrawn" in page.content


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        (0, "198.51.100.9", "10.0.0.2"),  # no proxy trusted: the header is the client's own claim
        (1, "198.51.100.9", "198.51.100.9"),
        (1, "203.0.113.66, 198.51.100.9", "198.51.100.9"),  # a forged entry to the left is ignored
        (2, "203.0.113.66, 198.51.100.9, 10.0.0.7", "198.51.100.9"),
        (2, "198.51.100.9", "10.0.0.2"),  # fewer entries than proxies: not what the proxies would send
    ],
)
def test_the_rate_limit_counts_the_address_the_nearest_trusted_proxy_saw(settings, hops, forwarded, expected):
    from django.test import RequestFactory

    from invitations.ratelimit import client_address

    settings.PROXY_HOPS = hops
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == expected


def test_behind_a_proxy_one_clients_burst_does_not_block_another(settings):
    settings.PROXY_HOPS, settings.INVITATION_ACCEPT_RATE_LIMIT = 1, 3
    guess = f"/invitations/accept/{'a' * 16}.{'b' * 43}/"
    guesser = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.9")
    assert [guesser.get(guess).status_code for _ in range(4)] == [302, 302, 302, 429]
    invitee = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.20")
    assert invitee.get(guess).status_code == 302  # an unknown token's redirect, not 429


def test_ipv6_clients_are_counted_per_64_and_ipv4_mapped_ones_per_address(settings):
    """A client holding a whole /64 cannot take a fresh allowance from each of its addresses."""
    settings.INVITATION_ACCEPT_RATE_LIMIT = 3
    guess = f"/invitations/accept/{'a' * 16}.{'b' * 43}/"
    same_64 = ["2001:db8:1:2::a", "2001:db8:1:2::b", "2001:db8:1:2:ffff::1", "2001:db8:1:2:0:0:0:c"]
    assert [Client(REMOTE_ADDR=address).get(guess).status_code for address in same_64] == [302, 302, 302, 429]
    assert Client(REMOTE_ADDR="2001:db8:1:3::a").get(guess).status_code == 302, "the next /64 is another client"
    mapped = [f"::ffff:198.51.100.{n}" for n in range(1, 5)]
    assert [Client(REMOTE_ADDR=address).get(guess).status_code for address in mapped] == [302] * 4


def test_a_page_left_open_from_an_earlier_link_does_not_act_on_the_invitation_opened_since(
    organization, users_worker, celery_worker, smtp
):
    first, second = fan_out(
        organization, [Invitee(email="tab@example.org"), Invitee(email="tab2@example.org")]
    ).invitation_ids
    browser = Client()
    page = open_link(browser, smtp.token_for("tab@example.org"))
    assert f'name="invitation" value="{first}"'.encode() in page.content
    open_link(browser, smtp.token_for("tab2@example.org"))  # in another tab

    stale = browser.post("/invitations/accept/", {"action": "decline", "invitation": first})
    assert stale.status_code == 409 and b"out of date" in stale.content
    assert browser.post("/invitations/accept/", {"action": "decline"}).status_code == 409
    assert set(Invitation.objects.values_list("status", flat=True)) == {"pending"}

    assert browser.post("/invitations/accept/", {"action": "decline", "invitation": second}).status_code == 200
    assert Invitation.objects.get(pk=second).status == "declined"
    assert Invitation.objects.get(pk=first).status == "pending"


def test_the_landing_pages_csrf_token_is_djangos_masked_secret_fresh_each_time(rf):
    """The landing page's token is Django's own get_token: a fresh mask of the browser's secret each response."""
    from django.middleware.csrf import _unmask_cipher_token, get_token

    secret = "a" * 16 + "Z9" * 8
    request = rf.get("/invitations/accept/")
    request.META["CSRF_COOKIE"] = secret
    tokens = {get_token(request) for _ in range(50)}
    assert len(tokens) == 50 and all(len(t) == 64 and _unmask_cipher_token(t) == secret for t in tokens)

    first_visit = rf.get("/invitations/accept/")  # no cookie yet: Django makes the secret and sets the cookie
    assert _unmask_cipher_token(get_token(first_visit)) == first_visit.META["CSRF_COOKIE"]
    assert first_visit.META["CSRF_COOKIE_NEEDS_UPDATE"]
