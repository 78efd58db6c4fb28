"""The event store's contract, run against each backend (PostgreSQL and SQLite) by subclassing.

Long because it is the whole contract, as one base class that every backend and path subclasses.
"""

import random
import sqlite3
import threading
import time
import uuid
from dataclasses import replace

import pytest
from django.db import DatabaseError, connections, transaction
from django.test.utils import CaptureQueriesContext

from eventstore import projections
from eventstore.catalogue import EventType, StreamType
from eventstore.events import EventMetadata, NewEvent
from eventstore.exceptions import ConcurrencyError, IdempotencyConflictError, InvalidEventError, ProjectionError
from eventstore.models import Event
from eventstore.projections import Projection
from eventstore.selectors import NO_METADATA, events_after, events_for_correlation, stream_events, stream_version
from eventstore.services import ANY, events_append, projections_rebuild
from organizations.models import Organization

ORG = StreamType.ORGANIZATION


def created(name: str = "Acme Health", subdomain: str | None = None, parent_id: str | None = None, **kw) -> NewEvent:
    data = {
        "name": name,
        "type": "provider",
        "subdomain": subdomain or f"s{uuid.uuid4().hex[:12]}",
        "domain": "",
        "parent_id": parent_id,
    }
    data["domain"] = f"{data['subdomain']}.a4c.test"
    return NewEvent(EventType.ORGANIZATION_CREATED, data, **kw)


def activated(**kw) -> NewEvent:
    return NewEvent(EventType.ORGANIZATION_ACTIVATED, {}, **kw)


class EventStoreContract:
    alias: str

    def append(self, stream_id, events, **kw):
        return events_append(stream_type=ORG, stream_id=stream_id, events=events, using=self.alias, **kw)

    def events(self):
        return Event.objects.using(self.alias)

    def test_first_append_starts_the_stream_at_version_one(self):
        org_id = str(uuid.uuid4())
        recorded = self.append(org_id, [created(), activated()], expected_version=0)
        assert [e.stream_version for e in recorded] == [1, 2]
        assert recorded[0].position < recorded[1].position
        assert [e.event_type for e in stream_events(stream_type=ORG, stream_id=org_id, using=self.alias)] == [
            "organization.created",
            "organization.activated",
        ]

    def test_stale_writer_gets_concurrency_error_and_writes_nothing(self):
        org_id = str(uuid.uuid4())
        self.append(org_id, [created()], expected_version=0)
        with pytest.raises(ConcurrencyError, match="is at version 1, but the writer expected 0"):
            self.append(org_id, [activated()], expected_version=0)
        assert stream_version(stream_type=ORG, stream_id=org_id, using=self.alias) == 1
        assert self.events().filter(stream_id=org_id).count() == 1

    def test_writer_ahead_of_the_stream_is_refused(self):
        org_id = str(uuid.uuid4())
        self.append(org_id, [created()], expected_version=0)
        with pytest.raises(ConcurrencyError):
            self.append(org_id, [activated()], expected_version=5)
        assert self.events().filter(stream_id=org_id).count() == 1

    def test_any_version_appends_at_the_end(self):
        org_id = str(uuid.uuid4())
        self.append(org_id, [created()], expected_version=0)
        (event,) = self.append(org_id, [activated()], expected_version=ANY)
        assert event.stream_version == 2

    def test_a_batch_is_all_or_nothing(self):
        org_id = str(uuid.uuid4())
        # The second event's projection fails (unknown parent), so the first must not stay either.
        other = str(uuid.uuid4())
        self.append(other, [created(subdomain="taken-one")], expected_version=0)
        with pytest.raises(ProjectionError):
            self.append(org_id, [created(subdomain="taken-one"), activated()], expected_version=0)
        assert not self.events().filter(stream_id=org_id).exists()
        assert not Organization.objects.using(self.alias).filter(pk=org_id).exists()

    def test_reappending_the_same_key_returns_the_stored_event(self):
        org_id = str(uuid.uuid4())
        first = self.append(org_id, [created(name="Keyed", subdomain="keyed", idempotency_key="wf-1/create")])
        again = self.append(org_id, [created(name="Keyed", subdomain="keyed", idempotency_key="wf-1/create")])
        assert again == first
        assert self.events().filter(stream_id=org_id).count() == 1

    def test_reappending_a_key_with_a_different_payload_is_an_error(self):
        org_id = str(uuid.uuid4())
        self.append(org_id, [created(name="One", subdomain="one-key", idempotency_key="wf-2/create")])
        with pytest.raises(IdempotencyConflictError, match="different payload"):
            self.append(org_id, [created(name="Two", subdomain="one-key", idempotency_key="wf-2/create")])
        with pytest.raises(IdempotencyConflictError, match="stored on stream"):
            self.append(str(uuid.uuid4()), [created(name="One", subdomain="one-key", idempotency_key="wf-2/create")])
        assert self.events().filter(idempotency_key="wf-2/create").count() == 1

    def test_reappending_a_key_after_later_events_returns_the_stored_event(self):
        """The replay is recognised even when the stream has moved on and the expected version is stale."""
        org_id = str(uuid.uuid4())
        (first,) = self.append(org_id, [created(name="Moved", subdomain="moved-on", idempotency_key="wf-3/create")])
        self.append(org_id, [activated(idempotency_key="wf-3/activate")], expected_version=1)
        again = self.append(
            org_id, [created(name="Moved", subdomain="moved-on", idempotency_key="wf-3/create")], expected_version=0
        )
        assert again == [first]
        with pytest.raises(IdempotencyConflictError, match="partly stored"):
            self.append(org_id, [activated(idempotency_key="wf-3/activate"), activated(idempotency_key="wf-3/new")])
        assert self.events().filter(stream_id=org_id).count() == 2

    def test_an_event_for_an_unknown_organization_is_refused(self):
        org_id = str(uuid.uuid4())
        with pytest.raises(ProjectionError, match="failed on organization.activated"):
            self.append(org_id, [activated()])
        assert not self.events().filter(stream_id=org_id).exists()

    def test_a_child_of_an_unknown_parent_is_refused(self):
        org_id = str(uuid.uuid4())
        with pytest.raises(ProjectionError, match="failed on organization.created"):
            self.append(org_id, [created(parent_id=str(uuid.uuid4()))])
        assert not self.events().filter(stream_id=org_id).exists()
        assert not Organization.objects.using(self.alias).filter(pk=org_id).exists()

    def test_single_events_update_only_their_organization(self):
        one, other = str(uuid.uuid4()), str(uuid.uuid4())
        self.append(one, [created(name="One")])
        self.append(other, [created(name="Other")])
        (dns,) = self.append(
            one, [NewEvent(EventType.ORGANIZATION_DNS_CONFIGURED, {"provider": "local", "record_id": "r9"})]
        )
        (active,) = self.append(one, [activated()])
        orgs = Organization.objects.using(self.alias)
        org = orgs.get(pk=one)
        assert (org.dns_status, org.dns_provider, org.dns_record_id) == ("configured", "local", "r9")
        assert (org.status, org.activated_at, org.updated_at, org.version) == (
            "active",
            active.created_at,
            active.created_at,
            3,
        )
        assert dns.created_at <= active.created_at
        untouched = orgs.get(pk=other)
        assert (untouched.status, untouched.dns_status, untouched.version) == ("pending", "not_configured", 1)

    def test_unknown_event_types_and_non_object_payloads_are_refused(self):
        org_id = str(uuid.uuid4())
        with pytest.raises(InvalidEventError, match="Unknown event type"):
            self.append(org_id, [NewEvent("organization.exploded", {})])
        with pytest.raises(InvalidEventError, match="Unknown event type"):
            self.append(org_id, [NewEvent("OrganizationCreated", {})])
        with pytest.raises(InvalidEventError, match="JSON object"):
            self.append(org_id, [NewEvent(EventType.ORGANIZATION_ACTIVATED, ["not", "an", "object"])])
        with pytest.raises(InvalidEventError, match="not plain JSON"):
            self.append(org_id, [NewEvent(EventType.ORGANIZATION_ACTIVATED, {"at": object()})])
        with pytest.raises(InvalidEventError, match="not plain JSON"):  # JSON has no NaN; jsonb would refuse it
            self.append(org_id, [NewEvent(EventType.ORGANIZATION_ACTIVATED, {"ratio": float("nan")})])
        with pytest.raises(InvalidEventError, match="stream type"):
            events_append(stream_type="planet", stream_id=org_id, events=[activated()], using=self.alias)
        with pytest.raises(InvalidEventError, match="workflow_id must be at most 200"):
            self.append(org_id, [created()], metadata=EventMetadata(workflow_id="w" * 201))
        with pytest.raises(InvalidEventError, match="correlation_id must be at most 64"):
            self.append(org_id, [created()], metadata=EventMetadata(correlation_id="c" * 65))
        assert not self.events().filter(stream_id=org_id).exists()

    def test_the_database_refuses_update_and_delete(self):
        org_id = str(uuid.uuid4())
        (event,) = self.append(org_id, [created()])
        table = Event._meta.db_table
        for sql in (
            f"UPDATE {table} SET event_type = 'organization.activated' WHERE position = %s",
            f"DELETE FROM {table} WHERE position = %s",
        ):
            with (
                pytest.raises(DatabaseError, match="append-only"),
                transaction.atomic(using=self.alias),
                connections[self.alias].cursor() as cursor,
            ):
                cursor.execute(sql, [event.position])
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(using=self.alias):
            self.events().filter(position=event.position).delete()
        stored = self.events().get(position=event.position)
        assert stored.event_type == "organization.created"

    def test_a_failing_projector_rolls_the_append_back(self, failing_projection):
        org_id = str(uuid.uuid4())
        with pytest.raises(ProjectionError, match="'always-fails' failed on organization.created") as excinfo:
            self.append(org_id, [created()])
        assert isinstance(excinfo.value.__cause__, RuntimeError)
        assert not self.events().filter(stream_id=org_id).exists()
        assert not Organization.objects.using(self.alias).filter(pk=org_id).exists()

    def test_metadata_is_stored_and_events_are_found_by_correlation(self):
        correlation = str(uuid.uuid4())
        meta = EventMetadata(
            correlation_id=correlation,
            workflow_id="org-bootstrap-x",
            run_id="r1",
            workflow_type="W",
            step="create_organization",
            attempt=2,
            causation_id="c1",
            acting_user_id=7,
        )
        org_id = str(uuid.uuid4())
        self.append(org_id, [created()], metadata=meta, created_by_id=7)
        self.append(str(uuid.uuid4()), [created()])
        (found,) = events_for_correlation(correlation_id=correlation, using=self.alias)
        assert found.metadata == meta
        assert found.created_by_id == 7
        assert self.events().get(pk=found.position).workflow_id == "org-bootstrap-x"

    def test_events_after_a_position_come_in_order(self):
        start = self.events().order_by("-position").values_list("position", flat=True).first() or 0
        ids = [str(uuid.uuid4()) for _ in range(5)]
        for org_id in ids:
            self.append(org_id, [created()])
        after = events_after(position=start, using=self.alias)
        assert [e.stream_id for e in after] == ids
        assert [e.position for e in after] == sorted(e.position for e in after)
        assert [e.stream_id for e in events_after(position=after[2].position, limit=1, using=self.alias)] == [ids[3]]

    def test_events_read_without_metadata_differ_only_in_their_metadata(self):
        start = self.events().order_by("-position").values_list("position", flat=True).first() or 0
        meta = EventMetadata(correlation_id="corr", workflow_id="org-bootstrap-y", step="create_organization")
        self.append(str(uuid.uuid4()), [created(idempotency_key=f"k-{uuid.uuid4()}"), activated()], metadata=meta)
        full = events_after(position=start, using=self.alias)
        bare = events_after(position=start, with_metadata=False, using=self.alias)
        assert [e.metadata for e in full] == [meta, meta]
        assert [e.metadata for e in bare] == [NO_METADATA, NO_METADATA]
        assert bare == [replace(e, metadata=NO_METADATA) for e in full]

    def test_a_rebuild_reads_metadata_only_for_projections_that_read_it(self, recording_projections):
        meta = EventMetadata(correlation_id="corr", workflow_id="org-bootstrap-z", step="create_organization")
        self.append(str(uuid.uuid4()), [created()], metadata=meta)
        reads, ignores = recording_projections
        assert ignores.seen == reads.seen == [meta]  # the live append applies both with the metadata
        ignores.seen.clear()
        projections_rebuild(names=[ignores.name], using=self.alias)
        assert ignores.seen and set(ignores.seen) == {NO_METADATA}
        ignores.seen.clear()
        projections_rebuild(names=[ignores.name, reads.name], using=self.alias)
        assert meta in reads.seen and meta in ignores.seen

    @pytest.mark.parametrize("held_rows", [1, 2, 3, None])
    def test_a_rebuild_hands_a_subdomain_over_as_the_live_store_did(self, held_rows, monkeypatch):
        """A failed organization frees its subdomain, a newer one takes it and fails too, and the first one is
        bootstrapped again. A rebuild that writes the last two changes in one statement must not let the
        restarted row claim the subdomain before the other row has let it go."""
        if held_rows:
            from organizations.projections import _HeldRowsReplay

            monkeypatch.setattr(_HeldRowsReplay, "HELD_ROWS", held_rows)
        first, second = str(uuid.uuid4()), str(uuid.uuid4())
        subdomain = f"handover-{first[:8]}"

        def failed():
            return NewEvent(EventType.ORGANIZATION_BOOTSTRAP_FAILED, {"step": "verify_dns", "message": "x"})

        self.append(first, [created(name="First", subdomain=subdomain), failed()])
        self.append(second, [created(name="Second", subdomain=subdomain)])
        self.append(str(uuid.uuid4()), [created(name="Bystander")])
        # The first row changes again before the second fails, so a rebuild meets it first among the changes.
        self.append(first, [NewEvent(EventType.ORGANIZATION_DNS_REMOVED, {})])
        self.append(second, [failed()])
        self.append(first, [NewEvent(EventType.ORGANIZATION_BOOTSTRAP_RESTARTED, {"attempt": 2})])

        def snapshot():
            rows = Organization.objects.using(self.alias).filter(pk__in=[first, second])
            return sorted(rows.values_list("id", "status", "subdomain", "version"), key=lambda row: str(row[0]))

        live = snapshot()
        assert sorted(status for _, status, _, _ in live) == ["failed", "pending"]
        projections_rebuild(names=["organizations"], batch_size=1, using=self.alias)
        assert snapshot() == live

    # One event per batch takes the single-event path, three mix inserts and multi-row updates, the default
    # replays everything in one batch. The organization projection's replay holds rows across batches; holding
    # at most two writes them out many times along the way.
    @pytest.mark.parametrize(("batch_size", "held_rows"), [(1, None), (3, None), (None, None), (1, 2), (3, 2)])
    def test_rebuilt_projection_equals_the_live_one(self, batch_size, held_rows, monkeypatch):
        if held_rows:
            from organizations.projections import _HeldRowsReplay

            monkeypatch.setattr(_HeldRowsReplay, "HELD_ROWS", held_rows)
        root = str(uuid.uuid4())
        self.append(root, [created(name="Root", subdomain="root-org"), activated()])
        children = [str(uuid.uuid4()) for _ in range(4)]
        for i, child in enumerate(children):
            self.append(child, [created(name=f"Child {i}", parent_id=root)])
        self.append(
            children[0], [NewEvent(EventType.ORGANIZATION_DNS_CONFIGURED, {"provider": "local", "record_id": "r1"})]
        )
        self.append(
            children[1], [NewEvent(EventType.ORGANIZATION_BOOTSTRAP_FAILED, {"step": "verify_dns", "message": "x"})]
        )
        self.append(children[2], [activated(), NewEvent(EventType.ORGANIZATION_DEACTIVATED, {"reason": "test"})])
        grandchild = str(uuid.uuid4())
        self.append(grandchild, [created(name="Grandchild", parent_id=children[3]), activated()])

        def snapshot():
            return sorted(Organization.objects.using(self.alias).values_list(), key=lambda row: str(row[0]))

        live = snapshot()
        assert len(live) == 6
        options = {"batch_size": batch_size} if batch_size else {}
        replayed = projections_rebuild(names=["organizations"], using=self.alias, **options)
        assert replayed >= 12
        assert snapshot() == live
        # And subtrees come out of the path index.
        from organizations.selectors import organization_subtree

        root_org = Organization.objects.using(self.alias).get(pk=root)
        assert {str(o.pk) for o in organization_subtree(root_org, using=self.alias)} == {root, *children, grandchild}


@pytest.fixture
def failing_projection():
    @projections.register
    class AlwaysFails(Projection):
        name = "always-fails"
        handles = frozenset({EventType.ORGANIZATION_CREATED})
        models = ()

        def apply(self, events, *, using):
            raise RuntimeError("projector bug")

    yield AlwaysFails
    projections.unregister("always-fails")


@pytest.fixture
def recording_projections():
    """Two projections of organization.created that keep the metadata they are fed; one declares it never reads it."""

    class Recording(Projection):
        handles = frozenset({EventType.ORGANIZATION_CREATED})
        models = ()

        def __init__(self):
            self.seen = []

        def apply(self, events, *, using):
            self.seen += [e.metadata for e in events]

    reads = projections.register(type("ReadsMetadata", (Recording,), {"name": "test-reads-metadata"}))
    ignores = projections.register(
        type("IgnoresMetadata", (Recording,), {"name": "test-ignores-metadata", "reads_metadata": False})
    )
    yield projections.get(reads.name), projections.get(ignores.name)
    projections.unregister(reads.name)
    projections.unregister(ignores.name)


def captured(alias, append):
    """The SQL of the statements `append()` sent."""
    with CaptureQueriesContext(connections[alias]) as queries:
        append()
    return [q["sql"] for q in queries.captured_queries]


@pytest.fixture
def plain_recorder(settings):
    settings.EVENTSTORE_APPEND_FAST_PATH = False


@pytest.mark.django_db(databases=["default"])
class TestPostgresEventStore(EventStoreContract):
    """Inside a transaction (the test's): the fast path's checked insert, then the projections' apply()."""

    alias = "default"

    def test_runs_on_postgresql(self):
        assert connections[self.alias].vendor == "postgresql"

    def test_an_append_in_a_transaction_is_the_lock_then_one_insert(self):
        org_id = str(uuid.uuid4())
        self.append(org_id, [created()])
        queries = [q for q in captured(self.alias, lambda: self.append(org_id, [activated()])) if "SAVEPOINT" not in q]
        lock, insert, *_ = queries
        assert lock.startswith("SELECT pg_advisory_xact_lock(")
        assert insert.startswith("INSERT INTO eventstore_event") and "pg_advisory_xact_lock(" not in insert


@pytest.mark.django_db(databases=["default"])
@pytest.mark.usefixtures("plain_recorder")
class TestPostgresPlainRecorder(EventStoreContract):
    """Inside a transaction with the fast path switched off: the plain recorder."""

    alias = "default"

    def test_an_append_takes_the_plain_path(self):
        queries = captured(self.alias, lambda: self.append(str(uuid.uuid4()), [created()]))
        assert any(sql.startswith('INSERT INTO "eventstore_event"') for sql in queries)  # the ORM's bulk_create
        assert not any(sql.startswith("INSERT INTO eventstore_event") for sql in queries)


@pytest.mark.django_db(databases=["sqlite"])
class TestSqliteEventStore(EventStoreContract):
    alias = "sqlite"

    def test_runs_on_sqlite(self):
        assert connections[self.alias].vendor == "sqlite"


@pytest.mark.django_db(databases=["default"], transaction=True)
@pytest.mark.usefixtures("plain_recorder")
class TestPostgresPlainRecorderOutsideTransactions(EventStoreContract):
    """Outside a transaction with the fast path switched off: the plain recorder is the reference the fast path
    below is held to, case by case."""

    alias = "default"

    def test_an_append_takes_the_plain_path(self):
        org_id = str(uuid.uuid4())
        queries = captured(self.alias, lambda: self.append(org_id, [created()]))
        assert any(sql.startswith("SELECT pg_advisory_xact_lock(") for sql in queries)
        assert any(sql.startswith('INSERT INTO "eventstore_event"') for sql in queries)  # the ORM's bulk_create
        assert not any(sql.startswith(("WITH appended AS", "INSERT INTO eventstore_event")) for sql in queries)


class FastPathContract(EventStoreContract):
    """Outside a transaction an append is one round trip: one statement takes the lock, inserts and writes the
    projection. The whole contract holds on that path too, and the rebuild test compares what it wrote with what
    apply() writes."""

    def one_update(self, org_id):
        return captured(
            self.alias,
            lambda: self.append(org_id, [NewEvent(EventType.ORGANIZATION_DNS_CONFIGURED, {"provider": "local"})]),
        )

    def test_an_append_is_one_round_trip(self):
        org_id = str(uuid.uuid4())
        self.append(org_id, [created()])
        (sql,) = self.one_update(org_id)
        assert sql.startswith("WITH appended AS (INSERT INTO eventstore_event")
        assert "pg_advisory_xact_lock(" in sql
        org = Organization.objects.using(self.alias).get(pk=org_id)
        assert (org.version, org.dns_provider) == (2, "local")

    def test_appends_the_statement_decides_alone_take_one_round_trip(self):
        """Not a fallback to the plain recorder in disguise: new organizations (with a parent or none), changes,
        keyed or not, at a known version or ANY, and a batch with no projection are one statement each."""
        root, child = str(uuid.uuid4()), str(uuid.uuid4())
        first = created(idempotency_key=f"wf-{root}/create")
        recorded = []
        appends = [
            lambda: recorded.extend(self.append(root, [first], expected_version=0)),
            lambda: self.append(child, [created(parent_id=root)]),
            lambda: self.append(root, [activated(idempotency_key=f"wf-{root}/activate")], expected_version=1),
            lambda: self.append(child, [NewEvent(EventType.ORGANIZATION_DNS_CONFIGURED, {"provider": "local"})]),
            lambda: events_append(
                stream_type=StreamType.USER,
                stream_id="42",
                events=[NewEvent(EventType.USER_CREATED, {"email": "a@example.org"}) for _ in range(3)],
                using=self.alias,
            ),
        ]
        for append in appends:
            (sql,) = captured(self.alias, append)
            assert sql.startswith("WITH appended AS (INSERT INTO eventstore_event")
        orgs = Organization.objects.using(self.alias)
        assert orgs.get(pk=root).status == "active"
        assert (orgs.get(pk=child).depth, orgs.get(pk=child).dns_provider) == (1, "local")
        assert stream_version(stream_type=StreamType.USER, stream_id="42", using=self.alias) == 3
        # A retry: the statement writes nothing, and the plain recorder that follows recognises it.
        queries = captured(self.alias, lambda: recorded.extend(self.append(root, [first])))
        assert queries[0].startswith("WITH appended AS (INSERT INTO eventstore_event") and len(queries) > 1
        assert recorded[0] == recorded[1]

    def test_an_append_that_waited_for_the_lock_counts_what_committed_meanwhile(self):
        """The statement's snapshot is older than its lock: an append that commits while it waits is invisible to
        its checks. It must then write nothing and leave the append to the plain recorder, not fail or fork."""
        org_id = str(uuid.uuid4())
        self.append(org_id, [created()])
        holding, release, errors, appended = threading.Event(), threading.Event(), [], []

        def hold(_):
            with transaction.atomic(using=self.alias):  # the plain recorder: takes the lock until commit
                self.append(org_id, [NewEvent(EventType.ORGANIZATION_DNS_CONFIGURED, {"provider": "local"})])
                holding.set()
                release.wait(30)

        def wait_for_lock(_):
            appended.extend(self.append(org_id, [NewEvent(EventType.ORGANIZATION_DNS_VERIFIED, {})]))

        holder = threading.Thread(target=lambda: errors.extend(run_threads(1, hold)))
        holder.start()
        assert holding.wait(30)
        waiter = threading.Thread(target=lambda: errors.extend(run_threads(1, wait_for_lock)))
        waiter.start()
        deadline = time.monotonic() + 30
        with connections[self.alias].cursor() as cursor:
            while time.monotonic() < deadline:
                cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
                if cursor.fetchone()[0]:
                    break
                time.sleep(0.01)
            else:
                pytest.fail("the second append never waited for the lock")
        release.set()
        holder.join(30)
        waiter.join(30)
        assert errors == []
        assert [e.stream_version for e in appended] == [3]
        assert stream_version(stream_type=ORG, stream_id=org_id, using=self.alias) == 3
        assert Organization.objects.using(self.alias).get(pk=org_id).dns_status == "verified"


@pytest.mark.django_db(databases=["default"], transaction=True)
class TestPostgresEventStoreOutsideTransactions(FastPathContract):
    """The fast path with Django's default client-side binding: the statement is sent as text, unprepared."""

    alias = "default"


@pytest.mark.django_db(databases=["prepared"], transaction=True)
class TestPostgresPreparedEventStoreOutsideTransactions(FastPathContract):
    """The fast path with server-side binding and psycopg's prepared statements (DATABASES OPTIONS
    `server_side_binding` and `prepare_threshold`)."""

    alias = "prepared"

    def prepared_appends(self) -> list[str]:
        with connections[self.alias].cursor() as cursor:
            cursor.execute("SELECT statement FROM pg_prepared_statements WHERE statement LIKE 'WITH appended AS%%'")
            return [statement for (statement,) in cursor.fetchall()]

    def test_psycopg_prepares_the_append_statement(self):
        org_id = str(uuid.uuid4())
        self.append(org_id, [created()])
        threshold = connections[self.alias].connection.prepare_threshold
        for _ in range(threshold + 1):
            (sql,) = self.one_update(org_id)
            assert sql.startswith("WITH appended AS (INSERT INTO eventstore_event")
        (prepared,) = [s for s in self.prepared_appends() if "UPDATE" in s]
        assert "pg_advisory_xact_lock(" in prepared
        assert Organization.objects.using(self.alias).get(pk=org_id).version == threshold + 2

    def test_prepared_statements_lost_by_the_session_are_prepared_again(self):
        org_id = str(uuid.uuid4())
        self.append(org_id, [created()])
        threshold = connections[self.alias].connection.prepare_threshold
        for _ in range(threshold + 1):
            self.one_update(org_id)
        assert self.prepared_appends()
        with connections[self.alias].cursor() as cursor:
            cursor.execute("DEALLOCATE ALL")  # what a pooler's DISCARD ALL does
        assert self.prepared_appends() == []
        for _ in range(threshold + 1):
            assert len(self.one_update(org_id)) == 1
        assert self.prepared_appends()
        version = 2 * threshold + 3
        assert stream_version(stream_type=ORG, stream_id=org_id, using=self.alias) == version
        assert Organization.objects.using(self.alias).get(pk=org_id).version == version


# --- Concurrent writers: these need committed data seen across connections -------------------------------


@pytest.fixture
def slow_projection():
    """Widens the window between drawing a position and committing it, where ordering bugs live."""

    @projections.register
    class Slow(Projection):
        name = "slow"
        handles = frozenset({EventType.ORGANIZATION_CREATED})
        models = ()

        def apply(self, events, *, using):
            time.sleep(random.uniform(0, 0.004))

    yield Slow
    projections.unregister("slow")


def run_threads(count: int, target) -> list[BaseException]:
    errors: list[BaseException] = []

    def wrapper(i):
        try:
            target(i)
        except BaseException as exc:  # noqa: BLE001  collected and re-raised by the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=wrapper, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return errors


class ConcurrentWritersContract:
    writers = 8

    def test_concurrent_writers_on_one_stream_never_share_a_version(self, live_alias):
        org_id = str(uuid.uuid4())
        events_append(stream_type=ORG, stream_id=org_id, events=[created()], expected_version=0, using=live_alias)
        outcomes: list[str] = []

        def write(i):
            for _ in range(10):
                version = stream_version(stream_type=ORG, stream_id=org_id, using=live_alias)
                try:
                    events_append(
                        stream_type=ORG,
                        stream_id=org_id,
                        using=live_alias,
                        expected_version=version,
                        events=[NewEvent(EventType.ORGANIZATION_DNS_VERIFIED, {"writer": i})],
                    )
                    outcomes.append("ok")
                except ConcurrencyError:
                    outcomes.append("conflict")

        assert run_threads(self.writers, write) == []
        versions = list(
            Event.objects.using(live_alias)
            .filter(stream_id=org_id)
            .order_by("stream_version")
            .values_list("stream_version", flat=True)
        )
        assert versions == list(range(1, len(versions) + 1))
        assert outcomes.count("ok") == len(versions) - 1
        assert outcomes.count("ok") + outcomes.count("conflict") == self.writers * 10

    def test_concurrent_writers_at_any_version_all_succeed(self, live_alias):
        """expected_version=ANY is decided under the append lock, so racing writers never conflict."""
        org_id = str(uuid.uuid4())
        events_append(stream_type=ORG, stream_id=org_id, events=[created()], expected_version=0, using=live_alias)

        def write(i):
            for n in range(10):
                events_append(
                    stream_type=ORG,
                    stream_id=org_id,
                    using=live_alias,
                    events=[NewEvent(EventType.ORGANIZATION_DNS_VERIFIED, {"writer": i, "n": n})],
                )

        assert run_threads(self.writers, write) == []
        versions = list(
            Event.objects.using(live_alias).filter(stream_id=org_id).values_list("stream_version", flat=True)
        )
        assert sorted(versions) == list(range(1, self.writers * 10 + 2))
        assert Organization.objects.using(live_alias).get(pk=org_id).version == self.writers * 10 + 1

    def test_concurrent_reappends_of_one_key_store_it_once(self, live_alias):
        org_id = str(uuid.uuid4())
        event = created(name="Raced", subdomain=f"raced-{org_id[:8]}", idempotency_key=f"wf-{org_id}/create")
        results = []

        def write(_):
            results.append(events_append(stream_type=ORG, stream_id=org_id, events=[event], using=live_alias))

        assert run_threads(self.writers, write) == []
        assert Event.objects.using(live_alias).filter(stream_id=org_id).count() == 1
        assert len(results) == self.writers
        assert all(result == results[0] for result in results)

    def test_a_reader_following_positions_never_misses_a_late_commit(self, live_alias, slow_projection):
        per_writer = 25
        start = Event.objects.using(live_alias).order_by("-position").values_list("position", flat=True).first() or 0
        done = threading.Event()
        seen: list[int] = []

        def read(_):
            checkpoint = start
            while True:
                finished = done.is_set()
                for event in events_after(position=checkpoint, using=live_alias):
                    seen.append(event.position)
                    checkpoint = event.position
                if finished:
                    return
                time.sleep(0.0005)

        def write(_):
            for _ in range(per_writer):
                events_append(stream_type=ORG, stream_id=str(uuid.uuid4()), events=[created()], using=live_alias)

        reader = threading.Thread(target=lambda: run_threads(1, read))
        reader.start()
        errors = run_threads(self.writers, write)
        done.set()
        reader.join(timeout=60)
        assert errors == []
        committed = list(Event.objects.using(live_alias).filter(position__gt=start).values_list("position", flat=True))
        assert len(committed) == self.writers * per_writer
        assert seen == sorted(committed), "the reader skipped or reordered events that committed late"


@pytest.mark.django_db(databases=["default"], transaction=True)
class TestPostgresConcurrentWriters(ConcurrentWritersContract):
    @pytest.fixture
    def live_alias(self):
        return "default"


@pytest.mark.django_db(databases=["default"], transaction=True)
@pytest.mark.usefixtures("plain_recorder")
class TestPostgresPlainRecorderConcurrentWriters(ConcurrentWritersContract):
    @pytest.fixture
    def live_alias(self):
        return "default"


@pytest.mark.django_db(databases=["prepared"], transaction=True)
class TestPostgresPreparedConcurrentWriters(ConcurrentWritersContract):
    @pytest.fixture
    def live_alias(self):
        return "prepared"


@pytest.mark.django_db(databases=["sqlite"])
class TestSqliteConcurrentWriters(ConcurrentWritersContract):
    @pytest.fixture
    def live_alias(self, tmp_path, django_db_blocker):
        """A private copy of the migrated SQLite test database: SQLite's flush would DELETE events, which the
        append-only trigger refuses, so committed data goes away with the file instead."""
        source = connections.settings["sqlite"]
        alias = "sqlite_live"
        path = tmp_path / "live.sqlite3"
        # A separate reader: the test's own connection sits in an open write transaction.
        with sqlite3.connect(source["NAME"]) as origin, sqlite3.connect(path) as target:
            origin.backup(target)
        connections.settings[alias] = {**source, "NAME": str(path), "TEST": {**source["TEST"], "NAME": str(path)}}
        with django_db_blocker.unblock():
            yield alias
        connections[alias].close()
        del connections[alias]
        del connections.settings[alias]
