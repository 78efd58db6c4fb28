"""The read-only event browser and the rebuild command, as an operator meets them."""

import io
import re
import uuid

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.urls import reverse

from eventstore.models import Event
from organizations.models import Organization
from tests.support.organizations import organization_make

pytestmark = pytest.mark.django_db


def make_org(name: str, *, workflow_id: str = "", correlation_id: str = "") -> str:
    return organization_make(name, type="partner", active=True, workflow_id=workflow_id, correlation_id=correlation_id)


def listed(page: str, column: str) -> list[str]:
    """The text of one column in each row the changelist lists (not the filters, the search box or the headers)."""
    cells = re.findall(rf'<t[dh] class="field-{column}"[^>]*>(.*?)</t[dh]>', page, re.S)
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in cells]


@pytest.fixture
def operator(client):
    client.force_login(User.objects.create_superuser("ops", "ops@example.test", "pw-" + uuid.uuid4().hex))
    return client


def test_the_event_browser_filters_and_pretty_prints_but_never_edits(operator):
    wanted = make_org("Wanted Org", workflow_id="org-bootstrap-wanted")
    make_org("Other Org", workflow_id="org-bootstrap-other")
    changelist = reverse("admin:eventstore_event_changelist")

    mine = [f"organization/{wanted}"] * 2  # its created and activated events
    by_workflow = operator.get(changelist, {"workflow_id": "org-bootstrap-wanted"}).content.decode()
    assert listed(by_workflow, "stream") == mine
    by_correlation = operator.get(changelist, {"correlation_id": wanted}).content.decode()
    assert listed(by_correlation, "stream") == mine
    assert sorted(listed(by_correlation, "event_type")) == ["organization.activated", "organization.created"]
    by_type = operator.get(changelist, {"event_type__exact": "organization.created"}).content.decode()
    assert listed(by_type, "event_type") == ["organization.created"] * 2
    by_stream = operator.get(changelist, {"q": wanted}).content.decode()
    assert listed(by_stream, "stream") == mine

    event = Event.objects.get(stream_id=wanted, stream_version=1)
    detail = operator.get(reverse("admin:eventstore_event_change", args=[event.pk])).content.decode()
    assert "&quot;name&quot;: &quot;Wanted Org&quot;" in detail and "<pre" in detail  # indented JSON
    assert "Save" not in detail and "Delete" not in detail
    assert operator.get(reverse("admin:eventstore_event_add")).status_code == 403
    assert operator.post(reverse("admin:eventstore_event_delete", args=[event.pk])).status_code == 403
    assert Event.objects.filter(pk=event.pk).exists()


def test_the_event_browser_search_finds_each_id_through_an_index(operator):
    from django.contrib.admin.sites import site
    from django.db import connection
    from django.test import RequestFactory

    wanted = make_org("Searched Org", workflow_id="org-bootstrap-searched", correlation_id="corr-searched")
    make_org("Unrelated Org")
    changelist = reverse("admin:eventstore_event_changelist")
    event = Event.objects.filter(stream_id=wanted).first()
    for term, rows in ((wanted, 2), ("corr-searched", 2), ("org-bootstrap-searched", 2), (str(event.event_id), 1)):
        page = operator.get(changelist, {"q": term}).content.decode()
        assert listed(page, "stream") == [f"organization/{wanted}"] * rows, term
    upper = operator.get(changelist, {"q": wanted.upper()}).content.decode()
    assert listed(upper, "stream") == [], "ids match exactly"
    assert listed(operator.get(changelist).content.decode(), "stream"), "the unfiltered list does list rows"

    admin = site._registry[Event]
    found, _ = admin.get_search_results(RequestFactory().get("/"), Event.objects.all(), "org-bootstrap-searched")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # tiny test table: ask which access the query allows
    plan = found.explain()
    assert "upper(" not in plan.lower()  # no case-folding of every row
    index_conditions = " ".join(line for line in plan.splitlines() if "Index Cond:" in line)
    for column in ("stream_id", "correlation_id", "workflow_id"):
        assert f"({column})::text = " in index_conditions, plan


def test_rebuild_projections_command_rebuilds_and_reports(capsys):
    org_id = make_org("Rebuilt Org")
    before = list(Organization.objects.values_list())
    out = io.StringIO()
    call_command("rebuild_projections", "organizations", "--no-progress", stdout=out)
    assert "Rebuilt organizations from" in out.getvalue()
    assert list(Organization.objects.values_list()) == before
    assert Organization.objects.get(pk=org_id).status == "active"


def test_rebuild_projections_command_refuses_unknown_names_and_bad_batches():
    with pytest.raises(CommandError, match="No projection named 'nope'"):
        call_command("rebuild_projections", "nope")
    with pytest.raises(CommandError, match="--batch-size must be at least 1"):
        call_command("rebuild_projections", "--batch-size", "0")


def test_the_organization_list_searches_and_filters(operator):
    make_org("Searchable Health")
    make_org("Another Place")
    changelist = reverse("admin:organizations_organization_changelist")
    found = operator.get(changelist, {"q": "Searchable"}).content.decode()
    assert "Searchable Health" in found and "Another Place" not in found
    active = operator.get(changelist, {"status__exact": "active"}).content.decode()
    assert "Searchable Health" in active and "Another Place" in active
    assert operator.get(changelist, {"status__exact": "failed"}).content.decode().count("Searchable Health") == 0
