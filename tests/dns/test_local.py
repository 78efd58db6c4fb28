"""The local provider (its own table) and `run_local_dns`, the DNS server that serves that table."""

import os
import signal
import socket
import subprocess
import sys

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from a4c.settings import BASE_DIR
from organizations.dns import DnsPermanentError, DnsRecordConflictError, get_provider
from organizations.dns.local import LocalDnsProvider
from organizations.dns.models import LocalDnsRecord
from organizations.dns.verify import verify_from_settings

BASE = "a4c.localhost"
TARGET = f"app.{BASE}"


@pytest.fixture
def provider():
    return LocalDnsProvider(base_domain=BASE, target=TARGET)


def ask(port, name, rdtype="A", *, tcp=False):
    query = dns.message.make_query(name, rdtype)
    send = dns.query.tcp if tcp else dns.query.udp
    return send(query, "127.0.0.1", port=port, timeout=5)


def answers(response):
    return [
        (rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype), rrset[0].to_text()) for rrset in response.answer
    ]


# --- the provider -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_ensure_record_stores_a_cname(provider):
    record = provider.ensure_record("Acme")

    row = LocalDnsRecord.objects.get()
    assert (row.name, row.record_type, row.content, row.proxied) == (f"acme.{BASE}", "CNAME", TARGET, False)
    assert (record.provider, record.record_id, record.fqdn, record.target) == ("local", str(row.pk), row.name, TARGET)


@pytest.mark.django_db
def test_ensure_record_again_returns_the_same_record(provider):
    first = provider.ensure_record("acme")
    second = provider.ensure_record("acme")

    assert first == second
    assert LocalDnsRecord.objects.count() == 1


@pytest.mark.django_db
def test_a_name_pointing_elsewhere_is_a_permanent_conflict(provider):
    LocalDnsRecord.objects.create(name=f"acme.{BASE}", record_type="CNAME", content="elsewhere.example.net")

    with pytest.raises(DnsRecordConflictError, match=rf"acme\.{BASE} is already taken.*elsewhere\.example\.net"):
        provider.ensure_record("acme")


@pytest.mark.django_db
def test_find_record_returns_what_is_there(provider):
    assert provider.find_record("acme") is None
    provider.ensure_record("acme")

    assert provider.find_record("acme").target == TARGET


@pytest.mark.django_db
def test_remove_record_deletes_it_once(provider):
    record = provider.ensure_record("acme")

    assert provider.remove_record("acme", record.record_id) is True
    assert provider.remove_record("acme", record.record_id) is False
    assert provider.remove_record("acme") is False
    assert not LocalDnsRecord.objects.exists()


@pytest.mark.django_db
def test_remove_leaves_someone_elses_record_alone(provider):
    LocalDnsRecord.objects.create(name=f"acme.{BASE}", record_type="CNAME", content="elsewhere.example.net")

    assert provider.remove_record("acme") is False
    assert LocalDnsRecord.objects.count() == 1


@pytest.mark.django_db
def test_an_invalid_subdomain_is_a_permanent_error(provider):
    with pytest.raises(DnsPermanentError, match="Invalid subdomain '-acme'"):
        provider.ensure_record("-acme")


def test_the_default_provider_is_local_and_says_so(settings):
    settings.DNS_PROVIDER = "local"

    provider = get_provider()

    assert (provider.name, provider.is_local) == ("local", True)


def test_an_unknown_provider_name_is_a_clear_error(settings):
    settings.DNS_PROVIDER = "route53"

    with pytest.raises(DnsPermanentError, match="Unknown DNS_PROVIDER 'route53'; choose one of local"):
        get_provider()


# --- the DNS server -----------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_server_answers_stored_cnames_and_the_target_address(local_dns, settings):
    LocalDnsProvider.from_settings().ensure_record("acme")

    response = ask(local_dns.port, f"acme.{BASE}")

    assert response.rcode() == dns.rcode.NOERROR
    assert response.flags & dns.flags.AA
    assert answers(response) == [(f"acme.{BASE}.", "CNAME", f"{TARGET}."), (f"{TARGET}.", "A", "127.0.0.1")]
    assert answers(ask(local_dns.port, f"acme.{BASE}", "CNAME")) == [(f"acme.{BASE}.", "CNAME", f"{TARGET}.")]
    assert answers(ask(local_dns.port, TARGET)) == [(f"{TARGET}.", "A", "127.0.0.1")]


@pytest.mark.django_db(transaction=True)
def test_the_server_answers_over_tcp_too(local_dns):
    LocalDnsProvider.from_settings().ensure_record("acme")

    response = ask(local_dns.port, f"acme.{BASE}", tcp=True)

    assert answers(response)[0] == (f"acme.{BASE}.", "CNAME", f"{TARGET}.")


@pytest.mark.django_db(transaction=True)
def test_the_server_gives_an_address_to_any_cname_target_in_the_zone(local_dns):
    LocalDnsRecord.objects.create(name=f"beta.{BASE}", record_type="CNAME", content=f"edge.{BASE}")

    response = ask(local_dns.port, f"beta.{BASE}")

    assert answers(response) == [(f"beta.{BASE}.", "CNAME", f"edge.{BASE}."), (f"edge.{BASE}.", "A", "127.0.0.1")]


@pytest.mark.django_db(transaction=True)
def test_unknown_names_are_nxdomain_and_other_zones_refused(local_dns):
    unknown = ask(local_dns.port, f"nobody.{BASE}")
    assert unknown.rcode() == dns.rcode.NXDOMAIN
    assert [dns.rdatatype.to_text(rrset.rdtype) for rrset in unknown.authority] == ["SOA"]

    assert ask(local_dns.port, "example.com").rcode() == dns.rcode.REFUSED


@pytest.mark.django_db(transaction=True)
def test_records_written_and_removed_show_up_at_once(local_dns):
    provider = LocalDnsProvider.from_settings()
    record = provider.ensure_record("acme")

    result = verify_from_settings(record)
    assert (result.verified, result.agreeing) == (True, (f"127.0.0.1:{local_dns.port}",))

    provider.remove_record("acme", record.record_id)

    result = verify_from_settings(record)
    assert result.verified is False
    assert result.checks[0].error == "NXDOMAIN"


def test_local_provider_settings_default_to_verifying_against_the_local_server():
    # The settings module is read in a child process, as at start-up, to see the defaults for DNS_PROVIDER=local.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DNS_VERIFY_", "LOCAL_DNS_"))}
    code = "from django.conf import settings as s; print(s.DNS_VERIFY_RESOLVERS, s.DNS_VERIFY_QUORUM)"
    for provider, port, expected in [
        ("local", "5454", "['127.0.0.1:5454'] 1"),
        ("cloudflare", "5454", "['1.1.1.1', '8.8.8.8', '9.9.9.9'] 2"),
    ]:
        output = subprocess.run(
            [sys.executable, "-c", f"import django; django.setup(); {code}"],
            env=env | {"DJANGO_SETTINGS_MODULE": "tests.settings", "DNS_PROVIDER": provider, "LOCAL_DNS_PORT": port},
            cwd=BASE_DIR,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert output == expected


# --- the management command ---------------------------------------------------------------------------------


def test_run_local_dns_refuses_a_taken_port_clearly():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]

        with pytest.raises(CommandError, match=f"Cannot listen on 127.0.0.1:{port}"):
            call_command("run_local_dns", port=port)


def test_run_local_dns_rejects_an_impossible_port():
    with pytest.raises(CommandError, match="--port must be between 1 and 65535, not 70000"):
        call_command("run_local_dns", port=70000)


@pytest.mark.django_db(transaction=True)
def test_run_local_dns_serves_the_table_and_stops_on_sigterm():
    LocalDnsProvider(base_domain=BASE, target=TARGET).ensure_record("acme")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    database = connection.settings_dict
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        # The test database, where this test's record was committed.
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "DNS_BASE_DOMAIN": BASE,
        "DNS_TARGET": TARGET,
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_local_dns", "--port", str(port)],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert "Local DNS serving a4c.localhost" in process.stdout.readline()
        response = ask(port, f"acme.{BASE}")
        assert answers(response)[0] == (f"acme.{BASE}.", "CNAME", f"{TARGET}.")

        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert "Local DNS stopped" in output


def test_run_local_dns_stops_on_sigint_before_any_query():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_local_dns", "--port", str(port)],
        cwd=BASE_DIR,
        env=os.environ | {"DJANGO_SETTINGS_MODULE": "tests.settings"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert "Local DNS serving" in process.stdout.readline()
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert "Local DNS stopped" in output
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind(("127.0.0.1", port))  # the port was released
