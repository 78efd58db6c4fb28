import uuid

from django.conf import settings
from django.db import models


class Event(models.Model):
    """One immutable domain event. Written only by `eventstore.services.events_append`.

    UPDATE and DELETE are refused by a database trigger (see migration 0002), not only by this code.
    """

    # Global order. Appends assign it while holding one global lock until commit, so positions become
    # visible in increasing order and a reader that follows them never misses a late commit.
    position = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    stream_type = models.CharField(max_length=50)
    stream_id = models.CharField(max_length=64)
    stream_version = models.PositiveIntegerField()
    event_type = models.CharField(max_length=100, db_index=True)
    schema_version = models.PositiveSmallIntegerField(default=1)
    data = models.JSONField()
    metadata = models.JSONField(default=dict, blank=True)
    # Copied out of the metadata into columns so the admin and catch-up readers can filter on an index.
    correlation_id = models.CharField(max_length=64, blank=True, db_index=True)
    workflow_id = models.CharField(max_length=200, blank=True, db_index=True)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True, unique=True)
    created_at = models.DateTimeField()
    # No database constraint: deleting a user must never touch the audit trail.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(
                fields=["stream_type", "stream_id", "stream_version"], name="eventstore_event_stream_version"
            ),
            models.CheckConstraint(condition=models.Q(stream_version__gte=1), name="eventstore_event_version_gte_1"),
        ]

    def __str__(self) -> str:
        return f"#{self.position} {self.event_type} {self.stream_type}/{self.stream_id} v{self.stream_version}"
