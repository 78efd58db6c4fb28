"""The PowerDNS provider against a real PowerDNS authoritative server, checked through its API and over DNS."""

import socket
import uuid

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from organizations.dns import DnsPermanentError, DnsRecordConflictError, DnsTransientError, get_provider
from organizations.dns.powerdns import PowerDnsProvider


@pytest.fixture
def zone(powerdns):
    """A zone of this test's own on the session's server."""
    name = f"t{uuid.uuid4().hex[:10]}.test"
    powerdns.create_zone(name)
    return name


def provider_for(powerdns, zone, *, api_key=None, api_url=None, ttl=60):
    return PowerDnsProvider(
        api_url=api_url or powerdns.api_url,
        api_key=api_key or powerdns.api_key,
        zone=zone,
        target=f"app.{zone}",
        server_id=powerdns.server_id,
        ttl=ttl,
    )


def ask(powerdns, name, rdtype="A", address="127.0.0.1"):
    query = dns.message.make_query(name, rdtype)
    return dns.query.udp(query, address, port=powerdns.dns_port, timeout=5)


def test_ensure_record_creates_the_cname_and_it_resolves_over_dns(powerdns, zone):
    record = provider_for(powerdns, zone).ensure_record("acme")

    assert (record.provider, record.fqdn, record.record_type) == ("powerdns", f"acme.{zone}", "CNAME")
    assert (record.target, record.proxied, record.ttl) == (f"app.{zone}", False, 60)
    assert record.record_id == f"acme.{zone}/CNAME"
    (rrset,) = powerdns.rrsets(zone, f"acme.{zone}")
    assert (rrset["type"], rrset["ttl"], [r["content"] for r in rrset["records"]]) == ("CNAME", 60, [f"app.{zone}."])
    for address in powerdns.dns_addresses:
        answer = ask(powerdns, f"acme.{zone}", "CNAME", address)
        assert answer.rcode() == dns.rcode.NOERROR
        assert [str(rdata.target) for rdata in answer.answer[0]] == [f"app.{zone}."]


def test_ensure_record_again_is_idempotent(powerdns, zone):
    provider = provider_for(powerdns, zone)

    first = provider.ensure_record("acme")
    second = provider.ensure_record("acme")

    assert first == second
    (rrset,) = powerdns.rrsets(zone, f"acme.{zone}")
    assert len(rrset["records"]) == 1


def test_automatic_ttl_becomes_a_real_ttl(powerdns, zone):
    record = provider_for(powerdns, zone, ttl=1).ensure_record("acme")

    assert record.ttl == 300
    assert powerdns.rrsets(zone, f"acme.{zone}")[0]["ttl"] == 300


@pytest.mark.parametrize(("rtype", "content"), [("CNAME", "elsewhere.example.net."), ("A", "192.0.2.7")])
def test_a_name_pointing_elsewhere_is_a_permanent_conflict(powerdns, zone, rtype, content):
    powerdns.set_rrset(zone, f"acme.{zone}", rtype, [content])

    with pytest.raises(DnsRecordConflictError, match=rf"acme\.{zone} is already taken"):
        provider_for(powerdns, zone).ensure_record("acme")

    (rrset,) = powerdns.rrsets(zone, f"acme.{zone}")
    assert [r["content"] for r in rrset["records"]] == [content]


def test_remove_record_deletes_it_and_it_stops_resolving(powerdns, zone):
    provider = provider_for(powerdns, zone)
    record = provider.ensure_record("acme")
    assert ask(powerdns, f"acme.{zone}", "CNAME").rcode() == dns.rcode.NOERROR

    assert provider.remove_record("acme", record.record_id) is True

    assert powerdns.rrsets(zone, f"acme.{zone}") == []
    assert ask(powerdns, f"acme.{zone}", "CNAME").rcode() == dns.rcode.NXDOMAIN
    assert provider.find_record("acme") is None


def test_remove_again_returns_false(powerdns, zone):
    provider = provider_for(powerdns, zone)
    provider.ensure_record("acme")
    assert provider.remove_record("acme") is True

    assert provider.remove_record("acme") is False


def test_remove_leaves_someone_elses_record_alone(powerdns, zone):
    powerdns.set_rrset(zone, f"acme.{zone}", "CNAME", ["elsewhere.example.net."])

    assert provider_for(powerdns, zone).remove_record("acme") is False

    assert len(powerdns.rrsets(zone, f"acme.{zone}")) == 1


def test_a_wrong_api_key_is_permanent_and_not_shown(powerdns, zone):
    wrong_key = "pdns-wrong-key-5a8c1f"

    with pytest.raises(DnsPermanentError, match="refused the API key") as caught:
        provider_for(powerdns, zone, api_key=wrong_key).ensure_record("acme")

    assert "HTTP 401" in str(caught.value)
    assert wrong_key not in str(caught.value) and powerdns.api_key not in str(caught.value)


def test_an_unknown_zone_is_permanent(powerdns):
    with pytest.raises(DnsPermanentError, match="has no zone 'missing.test'"):
        provider_for(powerdns, "missing.test").ensure_record("acme")


def test_an_unreachable_api_is_transient(powerdns, zone):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"

    with pytest.raises(DnsTransientError, match="Cannot reach PowerDNS"):
        provider_for(powerdns, zone, api_url=dead).ensure_record("acme")


def test_a_missing_api_key_is_a_clear_permanent_error(settings):
    settings.DNS_PROVIDER = "powerdns"
    settings.POWERDNS_API_KEY = ""

    with pytest.raises(DnsPermanentError, match="POWERDNS_API_KEY is not set"):
        get_provider()


def test_from_settings_uses_the_powerdns_settings(powerdns, zone, settings):
    settings.DNS_PROVIDER = "powerdns"
    settings.POWERDNS_API_URL = powerdns.api_url
    settings.POWERDNS_API_KEY = powerdns.api_key
    settings.POWERDNS_SERVER_ID = powerdns.server_id
    settings.POWERDNS_ZONE = zone
    settings.DNS_TARGET = f"app.{zone}"
    settings.DNS_RECORD_TTL = 120

    provider = get_provider()
    record = provider.ensure_record("Acme")

    assert (provider.name, provider.is_local) == ("powerdns", False)
    assert (record.fqdn, record.ttl) == (f"acme.{zone}", 120)
    assert ask(powerdns, f"acme.{zone}", "CNAME").answer[0][0].target.to_text() == f"app.{zone}."
    assert ask(powerdns, f"acme.{zone}").answer[0].rdtype == dns.rdatatype.CNAME
