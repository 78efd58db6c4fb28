import threading
import time

from django.db import connection

from eventstore.catalogue import EventType, StreamType
from eventstore.events import NewEvent
from eventstore.services import events_append
from temporal_bridge.activities import django_activity, step_key, step_metadata

from .sample_workflows import RecordInput, RecordResult


@django_activity("sample.record")
def record(params: RecordInput) -> RecordResult:
    time.sleep(params.sleep)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    if params.step == 1:
        event_type = EventType.ORGANIZATION_CREATED
        data = {"name": "Sample", "type": "partner", "subdomain": f"s-{params.stream_id[:8]}", "domain": "s.test"}
    else:
        event_type, data = EventType.ORGANIZATION_DNS_VERIFIED, {"step": params.step}
    (event,) = events_append(
        stream_type=StreamType.ORGANIZATION,
        stream_id=params.stream_id,
        events=[NewEvent(event_type, data, idempotency_key=step_key("record", params.step))],
        metadata=step_metadata("record"),
    )
    return RecordResult(thread=threading.current_thread().name, backend_pid=pid, position=event.position)
