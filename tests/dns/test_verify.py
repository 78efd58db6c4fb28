"""DNS verification against a real PowerDNS server, dead ports and a resolver that never answers."""

import socket
import uuid

import pytest

from organizations.dns import DnsPermanentError, DnsRecord
from organizations.dns.powerdns import PowerDnsProvider
from organizations.dns.verify import parse_resolver, verify_from_settings, verify_record


@pytest.fixture
def zone(powerdns):
    name = f"v{uuid.uuid4().hex[:10]}.test"
    powerdns.create_zone(name)
    powerdns.set_rrset(name, f"app.{name}", "A", ["192.0.2.10"])
    return name


@pytest.fixture
def cname(powerdns, zone):
    """acme.<zone> CNAME app.<zone>, made by the provider."""
    provider = PowerDnsProvider(
        api_url=powerdns.api_url, api_key=powerdns.api_key, zone=zone, target=f"app.{zone}", ttl=60
    )
    return provider.ensure_record("acme")


@pytest.fixture
def dead_resolver():
    """A loopback port nobody listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"127.0.0.1:{port}"


@pytest.fixture
def silent_resolver():
    """A UDP socket that receives queries and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{silent.getsockname()[1]}"


def test_quorum_reached_when_every_resolver_answers_the_cname(powerdns, zone, cname):
    result = verify_record(cname.fqdn, cname.target, resolvers=powerdns.resolvers, quorum=2, timeout=5)

    assert result.verified is True
    assert result.agreeing == tuple(powerdns.resolvers)
    assert [check.answer for check in result.checks] == [(f"CNAME app.{zone}.",)] * 3
    assert "3 of 3 resolvers agree (quorum 2)" in result.summary


def test_quorum_not_reached_when_the_name_does_not_exist(powerdns, zone):
    result = verify_record(f"nobody.{zone}", f"app.{zone}", resolvers=powerdns.resolvers, quorum=2, timeout=5)

    assert result.verified is False
    assert result.agreeing == ()
    assert {check.error for check in result.checks} == {"NXDOMAIN"}


def test_quorum_not_reached_when_resolvers_are_dead(powerdns, cname, dead_resolver):
    live = powerdns.resolvers[0]

    result = verify_record(cname.fqdn, cname.target, resolvers=[live, dead_resolver], quorum=2, timeout=0.5)

    assert result.verified is False
    assert result.agreeing == (live,)
    dead = result.checks[1]
    assert (dead.resolver, dead.agreed, dead.error) == (dead_resolver, False, "timeout after 0.5 s")


def test_a_resolver_that_never_answers_times_out_alone(powerdns, cname, silent_resolver):
    resolvers = [*powerdns.resolvers[:2], silent_resolver]

    result = verify_record(cname.fqdn, cname.target, resolvers=resolvers, quorum=2, timeout=1)

    assert result.verified is True
    assert result.agreeing == tuple(powerdns.resolvers[:2])
    assert result.checks[2].error == "timeout after 1 s"
    assert f"{silent_resolver}: timeout after 1 s" in result.summary


def test_a_cname_to_another_target_does_not_agree(powerdns, zone):
    powerdns.set_rrset(zone, f"acme.{zone}", "CNAME", ["elsewhere.example.net."])

    result = verify_record(f"acme.{zone}", f"app.{zone}", resolvers=powerdns.resolvers, quorum=1, timeout=5)

    assert result.verified is False
    assert result.checks[0].error == f"wrong target: CNAME to elsewhere.example.net., expected app.{zone}."


def test_a_proxied_record_answered_with_addresses_counts(powerdns, zone):
    # What a Cloudflare-proxied name looks like from outside: addresses, no CNAME.
    powerdns.set_rrset(zone, f"proxied.{zone}", "A", ["192.0.2.44"])

    result = verify_record(
        f"proxied.{zone}", f"app.{zone}", resolvers=powerdns.resolvers, quorum=2, timeout=5, proxied=True
    )

    assert result.verified is True
    assert result.checks[0].answer == ("A 192.0.2.44",)


def test_a_proxied_record_answered_with_ipv6_only_counts(powerdns, zone):
    powerdns.set_rrset(zone, f"proxied6.{zone}", "AAAA", ["2001:db8::44"])

    result = verify_record(
        f"proxied6.{zone}", f"app.{zone}", resolvers=powerdns.resolvers, quorum=3, timeout=5, proxied=True
    )

    assert result.verified is True
    assert result.checks[0].answer == ("AAAA 2001:db8::44",)


def test_addresses_without_a_cname_do_not_count_when_not_proxied(powerdns, zone):
    powerdns.set_rrset(zone, f"plain.{zone}", "A", ["192.0.2.44"])

    result = verify_record(f"plain.{zone}", f"app.{zone}", resolvers=powerdns.resolvers, quorum=1, timeout=5)

    assert result.verified is False
    assert result.checks[0].error == f"no CNAME to app.{zone}.: answered with addresses"


def test_verify_from_settings_uses_the_verification_settings(powerdns, cname, settings, silent_resolver):
    settings.DNS_VERIFY_RESOLVERS = [powerdns.resolvers[0], silent_resolver]
    settings.DNS_VERIFY_QUORUM = 1
    settings.DNS_VERIFY_TIMEOUT = 0.5

    result = verify_from_settings(cname)

    assert (result.verified, result.quorum, result.agreeing) == (True, 1, (powerdns.resolvers[0],))
    assert result.checks[1].error == "timeout after 0.5 s"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("1.1.1.1", ("1.1.1.1", 53)),
        (" 127.0.0.1:5353 ", ("127.0.0.1", 5353)),
        ("::1", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("[2001:db8::1]", ("2001:db8::1", 53)),
    ],
)
def test_parse_resolver_accepts_ip_and_optional_port(spec, expected):
    assert parse_resolver(spec) == expected


@pytest.mark.parametrize("spec", ["dns.google", "1.1.1.1:0", "1.1.1.1:99999", "1.1.1.1:x", "[::1]x", ""])
def test_parse_resolver_rejects_anything_else_clearly(spec):
    with pytest.raises(DnsPermanentError, match="Invalid DNS resolver"):
        parse_resolver(spec)


@pytest.mark.parametrize(
    ("resolvers", "quorum", "timeout", "message"),
    [
        ([], 1, 5, "No DNS resolvers"),
        (["1.1.1.1", "1.1.1.1"], 1, 5, "listed twice"),
        (["1.1.1.1", "8.8.8.8"], 3, 5, "between 1 and the 2 resolvers, not 3"),
        (["1.1.1.1"], 0, 5, "between 1 and the 1 resolvers, not 0"),
        (["1.1.1.1"], 1, 0, "timeout must be positive"),
    ],
)
def test_bad_verification_settings_are_permanent_errors(resolvers, quorum, timeout, message):
    record = DnsRecord(provider="local", record_id="", fqdn="acme.a4c.test", record_type="CNAME", target="app.a4c.test")

    with pytest.raises(DnsPermanentError, match=message):
        verify_record(record.fqdn, record.target, resolvers=resolvers, quorum=quorum, timeout=timeout)
