"""The Cloudflare provider against a fake of Cloudflare's v4 API served over real HTTP on loopback."""

import socket

import pytest

from organizations.dns import DnsPermanentError, DnsRecordConflictError, DnsTransientError, get_provider
from organizations.dns.cloudflare import CloudflareDnsProvider
from tests.support.fake_cloudflare import running_fake_cloudflare

TOKEN = "cf-test-token-4f0c2b9e7d51a3"
ZONE = "a4c.test"
TARGET = "app.a4c.test"


@pytest.fixture
def fake():
    with running_fake_cloudflare(TOKEN) as fake:
        fake.zone_id = fake.add_zone(ZONE)
        yield fake


def provider_for(fake, *, token=TOKEN, zone=ZONE, base_url=None, timeout=5.0, proxied=True, ttl=1):
    return CloudflareDnsProvider(
        api_token=token,
        zone_name=zone,
        target=TARGET,
        proxied=proxied,
        ttl=ttl,
        base_url=base_url or fake.base_url,
        timeout=timeout,
    )


def records_path(fake) -> str:
    return f"/client/v4/zones/{fake.zone_id}/dns_records"


def test_ensure_record_creates_a_cname_with_the_configured_proxy_and_ttl(fake):
    record = provider_for(fake, proxied=True, ttl=1).ensure_record("Acme")

    assert record.provider == "cloudflare"
    assert (record.fqdn, record.record_type, record.target, record.proxied) == ("acme.a4c.test", "CNAME", TARGET, True)
    assert record.record_id in fake.records
    zone_lookup, record_lookup, create = fake.requests
    assert (zone_lookup.method, zone_lookup.path, zone_lookup.query["name"]) == ("GET", "/client/v4/zones", ZONE)
    assert (record_lookup.method, record_lookup.path) == ("GET", records_path(fake))
    assert record_lookup.query["name.exact"] == "acme.a4c.test"
    assert (create.method, create.path) == ("POST", records_path(fake))
    assert create.body == {"name": "acme.a4c.test", "type": "CNAME", "content": TARGET, "proxied": True, "ttl": 1}
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in fake.requests)


def test_ensure_record_sends_unproxied_and_explicit_ttl_when_configured(fake):
    provider_for(fake, proxied=False, ttl=120).ensure_record("acme")

    (create,) = fake.requests_for("POST")
    assert create.body["proxied"] is False
    assert create.body["ttl"] == 120


def test_ensure_record_reuses_an_existing_matching_record(fake):
    existing = fake.add_record(fake.zone_id, "acme.a4c.test", "CNAME", TARGET, proxied=True)

    record = provider_for(fake).ensure_record("acme")

    assert record.record_id == existing
    assert fake.requests_for("POST") == []


def test_ensure_record_twice_creates_one_record(fake):
    provider = provider_for(fake)
    first = provider.ensure_record("acme")
    second = provider.ensure_record("acme")

    assert first == second
    assert len(fake.requests_for("POST")) == 1
    assert len(fake.records) == 1


@pytest.mark.parametrize(("rtype", "content"), [("CNAME", "elsewhere.example.net"), ("A", "192.0.2.7")])
def test_a_name_pointing_elsewhere_is_a_permanent_conflict(fake, rtype, content):
    fake.add_record(fake.zone_id, "acme.a4c.test", rtype, content)

    with pytest.raises(DnsRecordConflictError, match=r"acme\.a4c\.test is already taken") as caught:
        provider_for(fake).ensure_record("acme")

    assert content in str(caught.value)
    assert isinstance(caught.value, DnsPermanentError)
    assert fake.requests_for("POST") == []


def test_a_concurrent_create_of_the_same_record_is_reused(fake):
    """The record appears between our look-up and our create: Cloudflare says 81053, we re-read and reuse it."""
    fake.add_record_after_next_lookup(fake.zone_id, "acme.a4c.test", "CNAME", TARGET)

    record = provider_for(fake).ensure_record("acme")

    assert record.target == TARGET
    assert [r.method for r in fake.requests] == ["GET", "GET", "POST", "GET"]
    assert len(fake.records) == 1


def test_a_concurrent_create_pointing_elsewhere_is_a_conflict(fake):
    fake.add_record_after_next_lookup(fake.zone_id, "acme.a4c.test", "CNAME", "elsewhere.example.net")

    with pytest.raises(DnsRecordConflictError, match="elsewhere.example.net"):
        provider_for(fake).ensure_record("acme")


def test_rate_limit_is_transient_and_carries_retry_after(fake):
    fake.fail_next(429, 971, "Please wait and consider throttling your request speed", headers={"Retry-After": "7"})

    with pytest.raises(DnsTransientError, match="rate limit") as caught:
        provider_for(fake).ensure_record("acme")

    assert caught.value.retry_after == 7.0
    assert "971" in str(caught.value)
    assert len(fake.requests) == 1, "the SDK must not retry on its own; Temporal retries the activity"


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_transient_and_not_retried_by_the_sdk(fake, status):
    provider = provider_for(fake)
    provider._zone()
    fake.fail_next(status, 10001, "Internal service error", method="POST")

    with pytest.raises(DnsTransientError, match=f"HTTP {status}"):
        provider.ensure_record("acme")

    assert len(fake.requests_for("POST")) == 1
    assert fake.records == {}


def test_auth_failure_is_permanent_and_never_shows_the_token(fake):
    wrong_token = "cf-wrong-token-93b1e0aa77"

    with pytest.raises(DnsPermanentError) as caught:
        provider_for(fake, token=wrong_token).ensure_record("acme")

    message = str(caught.value)
    assert "HTTP 403" in message and "10000: Authentication error" in message
    assert "CLOUDFLARE_API_TOKEN" in message
    assert wrong_token not in message and TOKEN not in message
    # Not chained to the SDK's exception, which holds the request and its Authorization header.
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert fake.requests[0].headers["authorization"] == f"Bearer {wrong_token}"


def test_a_validation_error_is_permanent(fake):
    provider = provider_for(fake)
    provider._zone()
    fake.fail_next(400, 9005, "Content for CNAME record is invalid.", method="POST")

    with pytest.raises(DnsPermanentError, match="9005: Content for CNAME record is invalid"):
        provider.ensure_record("acme")


def test_an_unknown_zone_is_permanent(fake):
    with pytest.raises(DnsPermanentError, match="no zone named 'missing.test'"):
        provider_for(fake, zone="missing.test").ensure_record("acme")

    assert [r.method for r in fake.requests] == ["GET"]


def test_an_invalid_subdomain_is_permanent_before_any_request(fake):
    with pytest.raises(DnsPermanentError, match="Invalid subdomain 'no_underscores'"):
        provider_for(fake).ensure_record("no_underscores")

    assert fake.requests == []


def test_remove_record_by_id_deletes_it(fake):
    provider = provider_for(fake)
    record = provider.ensure_record("acme")

    assert provider.remove_record("acme", record.record_id) is True

    (delete,) = fake.requests_for("DELETE")
    assert delete.path == f"{records_path(fake)}/{record.record_id}"
    assert delete.headers["authorization"] == f"Bearer {TOKEN}"
    assert fake.records == {}


def test_remove_record_by_name_finds_and_deletes_it(fake):
    record_id = fake.add_record(fake.zone_id, "acme.a4c.test", "CNAME", TARGET)

    assert provider_for(fake).remove_record("acme") is True

    (delete,) = fake.requests_for("DELETE")
    assert delete.path.endswith(f"/dns_records/{record_id}")
    assert fake.records == {}


def test_remove_a_record_already_gone_returns_false(fake):
    provider = provider_for(fake)
    record = provider.ensure_record("acme")
    assert provider.remove_record("acme", record.record_id) is True

    assert provider.remove_record("acme", record.record_id) is False  # Cloudflare answers 404 / 81044
    assert provider.remove_record("acme") is False  # by name: nothing to delete, no DELETE sent
    assert len(fake.requests_for("DELETE")) == 2


def test_remove_by_name_leaves_someone_elses_record_alone(fake):
    fake.add_record(fake.zone_id, "acme.a4c.test", "CNAME", "elsewhere.example.net")

    assert provider_for(fake).remove_record("acme") is False

    assert fake.requests_for("DELETE") == []
    assert len(fake.records) == 1


def test_find_record_returns_what_is_there(fake):
    provider = provider_for(fake)
    assert provider.find_record("acme") is None
    fake.add_record(fake.zone_id, "acme.a4c.test", "CNAME", "elsewhere.example.net")

    found = provider.find_record("acme")

    assert (found.fqdn, found.target) == ("acme.a4c.test", "elsewhere.example.net")


def test_an_unreachable_api_is_transient(fake):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/client/v4"

    with pytest.raises(DnsTransientError, match="Cannot reach Cloudflare"):
        provider_for(fake, base_url=dead).ensure_record("acme")


def test_an_api_that_never_answers_is_a_transient_timeout(fake):
    # Connections complete in the kernel's backlog, but nobody ever reads or answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/client/v4"

        with pytest.raises(DnsTransientError, match="did not answer in time"):
            provider_for(fake, base_url=url, timeout=0.5).ensure_record("acme")


def test_from_settings_uses_the_cloudflare_settings(fake, settings):
    settings.DNS_PROVIDER = "cloudflare"
    settings.CLOUDFLARE_API_TOKEN = TOKEN
    settings.CLOUDFLARE_ZONE_NAME = ZONE
    settings.CLOUDFLARE_BASE_URL = fake.base_url
    settings.DNS_TARGET = TARGET
    settings.DNS_PROXIED = False
    settings.DNS_RECORD_TTL = 300

    provider = get_provider()
    record = provider.ensure_record("acme")

    assert provider.is_local is False
    assert (record.fqdn, record.target, record.proxied, record.ttl) == ("acme.a4c.test", TARGET, False, 300)


def test_a_missing_token_is_a_clear_permanent_error(settings):
    settings.DNS_PROVIDER = "cloudflare"
    settings.CLOUDFLARE_API_TOKEN = ""

    with pytest.raises(DnsPermanentError, match="CLOUDFLARE_API_TOKEN is not set"):
        get_provider()
