"""Password logins, the API's HTTP Basic (the README's `curl -u`) and the admin's login page: every failed login
gets one answer, and once a client's failed logins reach the limit its next password is not even tried, so
neither is a fast password oracle."""

import base64
import uuid

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client

from tests.onboarding.test_admin_and_api import staff, support  # noqa: F401 (support is a fixture)

pytestmark = pytest.mark.django_db
PASSWORD = "the right password 1"


def status_url() -> str:
    return f"/api/admin/organizations/{uuid.uuid4()}/bootstrap"


def basic(username: str, password: str) -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


@pytest.fixture(autouse=True)
def three_attempts_a_minute(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"failed_logins": "3/min"}}
    cache.clear()
    yield
    cache.clear()


def test_basic_login_works_for_staff_with_the_permission():
    user = staff("robot", can_bootstrap=True)
    user.set_password(PASSWORD)
    user.save()
    assert Client().get(status_url(), **basic("robot", PASSWORD)).status_code == 404  # in, and no such bootstrap


def test_an_unknown_user_and_a_wrong_password_get_the_same_answer():
    User.objects.create_user("victim", "victim@example.test", PASSWORD)
    unknown = Client().get(status_url(), **basic("nobody", PASSWORD))
    wrong = Client().get(status_url(), **basic("victim", "a wrong password"))
    assert unknown.status_code == wrong.status_code == 403  # 403, not 401: the session scheme is listed first
    assert unknown.json() == wrong.json() == {"detail": "Invalid username/password."}


def test_failed_basic_logins_are_rate_limited_per_client_before_the_password_is_tried():
    User.objects.create_user("victim", "victim@example.test", PASSWORD)
    guesser = Client(REMOTE_ADDR="203.0.113.5")
    guesses = [guesser.get(status_url(), **basic("victim", f"guess {n}")).status_code for n in range(3)]
    assert guesses == [403, 403, 403]
    right = guesser.get(status_url(), **basic("victim", PASSWORD))
    assert right.status_code == 429, "the right password is not told from a wrong one once the limit is reached"
    assert int(right["Retry-After"]) > 0
    assert Client(REMOTE_ADDR="198.51.100.7").get(status_url(), **basic("victim", "x")).status_code == 403


def test_logins_that_succeed_are_not_counted():
    user = staff("robot", can_bootstrap=True)
    user.set_password(PASSWORD)
    user.save()
    script = Client(REMOTE_ADDR="203.0.113.9")
    assert [script.get(status_url(), **basic("robot", PASSWORD)).status_code for _ in range(6)] == [404] * 6


def test_session_requests_are_not_counted(support):  # noqa: F811
    assert [support.get(status_url()).status_code for _ in range(5)] == [404] * 5


@pytest.mark.django_db(transaction=True)
def test_parallel_guesses_cannot_all_slip_under_the_limit(monkeypatch):
    """Each guess is counted before its password is tried, atomically: ten at once get three tries, not ten."""
    import threading
    import time

    from rest_framework import authentication

    tried = []

    def slow_wrong_password(request=None, **credentials):
        tried.append(credentials["username"])
        time.sleep(0.3)  # hashing takes a while: the window in which the others arrive
        return None

    monkeypatch.setattr(authentication, "authenticate", slow_wrong_password)
    statuses: list[int] = []

    def guess(n: int) -> None:
        statuses.append(Client(REMOTE_ADDR="203.0.113.77").get(status_url(), **basic("victim", f"g{n}")).status_code)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(tried) == 3
    assert sorted(statuses) == [403] * 3 + [429] * 7


def test_the_admin_login_page_limits_failed_logins_the_same_way(client):
    from django.urls import reverse

    user = staff("ops", can_bootstrap=False)
    user.set_password(PASSWORD)
    user.save()
    login = reverse("admin:login")
    guesser = Client(REMOTE_ADDR="203.0.113.44")
    wrong = [guesser.post(login, {"username": "ops", "password": f"guess {n}"}) for n in range(3)]
    assert all(r.status_code == 200 and b"Please enter the correct username" in r.content for r in wrong)
    right = guesser.post(login, {"username": "ops", "password": PASSWORD})
    assert right.status_code == 200 and b"Too many failed logins" in right.content, "not even the right one"
    assert "_auth_user_id" not in guesser.session

    elsewhere = Client(REMOTE_ADDR="198.51.100.44")
    for _ in range(4):  # logins that succeed use up nothing
        assert elsewhere.post(login, {"username": "ops", "password": PASSWORD}).status_code == 302
        elsewhere.logout()
