import contextlib
import json
import uuid

from django.contrib import admin
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html

from .catalogue import StreamType
from .models import Event


def _pretty(value) -> str:
    return format_html(
        "<pre style='margin:0;white-space:pre-wrap'>{}</pre>", json.dumps(value, indent=2, sort_keys=True)
    )


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """For events and projections: they change only through appends, never through a form."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Event)
class EventAdmin(ReadOnlyModelAdmin):
    """A read-only browser over the event store. Events are immutable: no add, change or delete."""

    list_display = ["position", "event_type", "stream", "stream_version", "created_at", "correlation", "workflow"]
    list_filter = ["event_type", "stream_type", "created_at"]
    # Exact matches only (see get_search_results): these columns are indexed and ids are never searched by fragment.
    search_fields = ["=stream_id", "=correlation_id", "=workflow_id", "=event_id"]
    search_help_text = "Exact stream id, correlation id, workflow id or event id."
    ordering = ["-position"]
    list_per_page = 50
    show_full_result_count = False
    fields = [
        "position",
        "event_id",
        "event_type",
        "schema_version",
        "stream_type",
        "stream_id",
        "stream_version",
        "created_at",
        "created_by",
        "correlation_id",
        "workflow_id",
        "idempotency_key",
        "payload",
        "event_metadata",
    ]
    readonly_fields = fields

    def get_search_results(self, request, queryset, search_term):
        # Equality, column by column. Django's "=" prefix means iexact, UPPER() of every row: a scan of the whole
        # append-only table. The stream id is indexed after the stream type, so the search names the types.
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(stream_type__in=list(StreamType), stream_id=term) | Q(correlation_id=term) | Q(workflow_id=term)
        with contextlib.suppress(ValueError):
            match |= Q(event_id=uuid.UUID(term))
        return queryset.filter(match), False

    def lookup_allowed(self, lookup, value, request=None):
        return lookup in {"correlation_id", "workflow_id", "stream_id"} or super().lookup_allowed(
            lookup, value, request
        )

    @admin.display(description="stream")
    def stream(self, obj: Event) -> str:
        url = reverse("admin:eventstore_event_changelist") + f"?stream_id={obj.stream_id}"
        return format_html('<a href="{}">{}/{}</a>', url, obj.stream_type, obj.stream_id)

    @admin.display(description="correlation id")
    def correlation(self, obj: Event) -> str:
        if not obj.correlation_id:
            return "—"
        url = reverse("admin:eventstore_event_changelist") + f"?correlation_id={obj.correlation_id}"
        return format_html('<a href="{}">{}</a>', url, obj.correlation_id)

    @admin.display(description="workflow id")
    def workflow(self, obj: Event) -> str:
        if not obj.workflow_id:
            return "—"
        url = reverse("admin:eventstore_event_changelist") + f"?workflow_id={obj.workflow_id}"
        return format_html('<a href="{}">{}</a>', url, obj.workflow_id)

    @admin.display(description="data")
    def payload(self, obj: Event) -> str:
        return _pretty(obj.data)

    @admin.display(description="metadata")
    def event_metadata(self, obj: Event) -> str:
        return _pretty(obj.metadata)
