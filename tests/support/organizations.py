"""Organizations for tests, made the way the bootstrap makes them: by appending their events."""

import uuid

from eventstore.catalogue import EventType, StreamType
from eventstore.events import EventMetadata, NewEvent
from eventstore.services import events_append


def organization_make(
    name: str = "Harbor Health",
    *,
    type: str = "provider",
    active: bool = False,
    workflow_id: str = "",
    correlation_id: str = "",
) -> str:
    """A new organization (pending, or `active`); returns its id."""
    org_id = str(uuid.uuid4())
    subdomain = f"o{org_id[:8]}"
    data = {"name": name, "type": type, "subdomain": subdomain, "domain": f"{subdomain}.a4c.test", "parent_id": None}
    events = [NewEvent(EventType.ORGANIZATION_CREATED, data)]
    if active:
        events.append(NewEvent(EventType.ORGANIZATION_ACTIVATED, {}))
    events_append(
        stream_type=StreamType.ORGANIZATION,
        stream_id=org_id,
        events=events,
        expected_version=0,
        metadata=EventMetadata(workflow_id=workflow_id, correlation_id=correlation_id or org_id, step="test"),
    )
    return org_id
