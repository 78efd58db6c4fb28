"""Drop the "_like" indexes of the event table: the admin searches these columns by exact value only, and
every append paid for four extra index entries."""

from django.db import migrations

from eventstore.migration_operations import drop_pattern_indexes


class Migration(migrations.Migration):
    dependencies = [("eventstore", "0003_append_check")]

    operations = [
        drop_pattern_indexes("eventstore_event", ["event_type", "correlation_id", "workflow_id", "idempotency_key"])
    ]
