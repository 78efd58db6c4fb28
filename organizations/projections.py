"""The organization projection: folds organization events into `Organization` rows, a batch at a time."""

from collections.abc import Callable, Sequence

from eventstore.catalogue import EventType
from eventstore.events import PendingEvent, RecordedEvent
from eventstore.projections import AppendStatement, Projection, Replay, register
from eventstore.rows import rows_by_pk, rows_insert, rows_update

from . import projection_sql
from .models import RELEASED_STATUSES, DnsStatus, Organization, OrganizationStatus

_MUTABLE_FIELDS = [
    f.attname
    for f in Organization._meta.concrete_fields
    if f.name not in ("id", "parent", "path", "depth", "created_at")
]
# What Organization(...) fills in for the fields _created leaves out; callable defaults are called per row.
_DEFAULTS = {
    f.attname: f.get_default()
    for f in Organization._meta.concrete_fields
    if not (f.has_default() and callable(f.default))
}
_CALLABLE_DEFAULTS = [f for f in Organization._meta.concrete_fields if f.has_default() and callable(f.default)]


class _Row(dict):
    """An organization row as a dict of attnames, read and written like a model instance by the handlers below.

    Rows stay dicts from the SELECT to the INSERT or UPDATE: model instances, built for every row read and
    adapted value by value for every row written, were a large share of a rebuild's time.
    """

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value) -> None:
        self[name] = value


def _created(event: PendingEvent, parent: _Row | None) -> _Row:
    """The new row; its version, the event's stream version, is the caller's (a pending event has none yet)."""
    data = event.data
    return _Row(
        _DEFAULTS,
        **{f.attname: f.get_default() for f in _CALLABLE_DEFAULTS},
        id=event.stream_id,
        name=data["name"],
        type=data["type"],
        parent_id=data.get("parent_id"),
        path=(parent.path if parent else "") + event.stream_id.replace("-", ""),
        depth=parent.depth + 1 if parent else 0,
        subdomain=data["subdomain"],
        domain=data["domain"],
        status=OrganizationStatus.PENDING,
        dns_status=DnsStatus.NOT_CONFIGURED,
        bootstrap_attempt=data.get("attempt", 1),
        created_at=event.created_at,
        updated_at=event.created_at,
    )


def _restarted(org: _Row, event: RecordedEvent) -> None:
    org.status = OrganizationStatus.PENDING
    org.bootstrap_attempt = event.data["attempt"]
    org.failed_step = org.failure_message = ""
    org.failed_at = None


def _dns_configured(org: _Row, event: RecordedEvent) -> None:
    org.dns_status = DnsStatus.CONFIGURED
    org.dns_provider = event.data["provider"]
    org.dns_record_id = event.data.get("record_id", "")


def _dns_verified(org: _Row, event: RecordedEvent) -> None:
    org.dns_status = DnsStatus.VERIFIED


def _dns_removed(org: _Row, event: RecordedEvent) -> None:
    org.dns_status = DnsStatus.REMOVED
    org.dns_record_id = ""


def _activated(org: _Row, event: RecordedEvent) -> None:
    org.status = OrganizationStatus.ACTIVE
    org.activated_at = event.created_at


def _deactivated(org: _Row, event: RecordedEvent) -> None:
    org.status = OrganizationStatus.DEACTIVATED
    org.deactivated_at = event.created_at


def _bootstrap_failed(org: _Row, event: RecordedEvent) -> None:
    org.status = OrganizationStatus.FAILED
    org.failed_step = event.data["step"]
    org.failure_message = event.data.get("message", "")
    org.failed_at = event.created_at


_APPLY: dict[str, Callable[[_Row, PendingEvent], None]] = {
    EventType.ORGANIZATION_BOOTSTRAP_RESTARTED: _restarted,
    EventType.ORGANIZATION_DNS_CONFIGURED: _dns_configured,
    EventType.ORGANIZATION_DNS_VERIFIED: _dns_verified,
    EventType.ORGANIZATION_DNS_REMOVED: _dns_removed,
    EventType.ORGANIZATION_ACTIVATED: _activated,
    EventType.ORGANIZATION_DEACTIVATED: _deactivated,
    EventType.ORGANIZATION_BOOTSTRAP_FAILED: _bootstrap_failed,
}


class OrganizationMissing(LookupError):
    pass


def _fold(events: Sequence[RecordedEvent], held: dict[str, _Row], using: str) -> tuple[dict, dict]:
    """Apply a batch to its rows: `held` ones (not written yet) first, the others read from the table.
    Returns the rows created by the batch and the existing rows it changed, by id."""
    created_here = {e.stream_id for e in events if e.event_type == EventType.ORGANIZATION_CREATED}
    wanted = {e.stream_id for e in events} | {
        e.data["parent_id"]
        for e in events
        if e.event_type == EventType.ORGANIZATION_CREATED and e.data.get("parent_id")
    }
    wanted -= created_here | held.keys()
    rows = {str(row["id"]): _Row(row) for row in rows_by_pk(Organization, wanted, using=using)}
    rows.update(held)
    new: dict[str, _Row] = {}
    changed: dict[str, _Row] = {}
    for event in events:
        if event.event_type == EventType.ORGANIZATION_CREATED:
            parent_id = event.data.get("parent_id")
            parent = rows.get(parent_id) if parent_id else None
            if parent_id and parent is None:
                raise OrganizationMissing(f"Parent organization {parent_id} does not exist.")
            rows[event.stream_id] = new[event.stream_id] = _created(event, parent)
            new[event.stream_id].version = event.stream_version
            continue
        org = rows.get(event.stream_id)
        if org is None:
            raise OrganizationMissing(f"{event.event_type} for unknown organization {event.stream_id}.")
        _APPLY[event.event_type](org, event)
        org.version, org.updated_at = event.stream_version, event.created_at
        if event.stream_id not in new:
            changed[event.stream_id] = org
    return new, changed


class _HeldRowsReplay(Replay):
    """A rebuild's rows kept in memory across batches, up to HELD_ROWS, then all written at once.

    An organization's events come minutes apart, so many batches apart: written batch by batch, most rows
    would be inserted by one batch and updated by the next. Held, most are inserted once, in their final
    state. Writing every held row at once leaves the table as the live one stood after the last event applied,
    so its constraints hold as they did live once the writes are done; `close` orders them so that they also
    hold along the way.
    """

    HELD_ROWS = 20_000

    def __init__(self, projection, using: str) -> None:
        super().__init__(projection, using)
        self.new: dict[str, _Row] = {}  # not in the table yet
        self.changed: dict[str, _Row] = {}  # in the table, changed since

    def apply(self, events: Sequence[RecordedEvent]) -> None:
        new, changed = _fold(events, self.new | self.changed, self.using)
        self.new.update(new)
        for pk, row in changed.items():
            if pk not in self.new:
                self.changed[pk] = row
        if len(self.new) + len(self.changed) > self.HELD_ROWS:
            self.close()

    def close(self) -> None:
        # Rows giving a subdomain back first, then other changes, then new rows: the unique index is checked row by row.
        released = [row for row in self.changed.values() if row.status in RELEASED_STATUSES]
        kept = [row for row in self.changed.values() if row.status not in RELEASED_STATUSES]
        for rows in (released, kept):
            rows_update(Organization, rows, _MUTABLE_FIELDS, using=self.using)
        rows_insert(Organization, list(self.new.values()), using=self.using)
        self.new, self.changed = {}, {}


@register
class OrganizationProjection(Projection):
    name = "organizations"
    handles = frozenset({EventType.ORGANIZATION_CREATED, *_APPLY})
    models = (Organization,)
    reads_metadata = False

    def apply(self, events: Sequence[RecordedEvent], *, using: str) -> None:
        if len(events) == 1 and events[0].event_type != EventType.ORGANIZATION_CREATED:
            # The live path's common case: the handler sets its fields on a row holding just the id; one UPDATE.
            event = events[0]
            changes = _Row(id=event.stream_id, version=event.stream_version, updated_at=event.created_at)
            _APPLY[event.event_type](changes, event)
            if not rows_update(Organization, [changes], [f for f in changes if f != "id"], using=using):
                raise OrganizationMissing(f"{event.event_type} for unknown organization {event.stream_id}.")
            return
        new, changed = _fold(events, {}, using)
        rows_insert(Organization, list(new.values()), using=using)
        rows_update(Organization, list(changed.values()), _MUTABLE_FIELDS, using=using)

    def replay(self, *, using: str) -> Replay:
        return _HeldRowsReplay(self, using)

    def append_statement(self, events: Sequence[PendingEvent], *, using: str) -> AppendStatement | None:
        if len(events) != 1:
            return None  # one UPDATE per row and statement: several events of one organization go through apply()
        (event,) = events
        if event.event_type == EventType.ORGANIZATION_CREATED:
            row = _created(event, None)
            del row["version"]  # the statement takes it from the events' insert
            if parent_id := event.data.get("parent_id"):
                # The parent's path and depth come from its row, which the statement joins: no parent, no row.
                del row["path"], row["depth"]
                return projection_sql.child_created(row, parent_id, event.stream_id.replace("-", ""), using=using)
            return projection_sql.created(row, using=using)
        # As apply() does for one event: the fields its handler sets, the version and updated_at.
        changes = _Row(updated_at=event.created_at)
        _APPLY[event.event_type](changes, event)
        return projection_sql.changed(event.stream_id, changes, using=using)
