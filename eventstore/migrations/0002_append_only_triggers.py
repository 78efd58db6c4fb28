"""Make the event table append-only in the database itself: UPDATE and DELETE are refused by triggers.

TRUNCATE stays possible on PostgreSQL for test teardown; production roles should not hold that privilege.
"""

from django.db import migrations

MESSAGE = "eventstore_event is append-only: events cannot be updated or deleted"

POSTGRES_FORWARD = [
    f"""
    CREATE OR REPLACE FUNCTION eventstore_event_reject_change() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'restrict_violation';
    END;
    $$ LANGUAGE plpgsql;
    """,
    """
    CREATE TRIGGER eventstore_event_append_only
    BEFORE UPDATE OR DELETE ON eventstore_event
    FOR EACH ROW EXECUTE FUNCTION eventstore_event_reject_change();
    """,
]
POSTGRES_BACKWARD = [
    "DROP TRIGGER IF EXISTS eventstore_event_append_only ON eventstore_event;",
    "DROP FUNCTION IF EXISTS eventstore_event_reject_change();",
]
SQLITE_FORWARD = [
    f"""
    CREATE TRIGGER eventstore_event_no_update BEFORE UPDATE ON eventstore_event
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;
    """,
    f"""
    CREATE TRIGGER eventstore_event_no_delete BEFORE DELETE ON eventstore_event
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;
    """,
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS eventstore_event_no_update;",
    "DROP TRIGGER IF EXISTS eventstore_event_no_delete;",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        statements = statements_by_vendor.get(schema_editor.connection.vendor)
        if statements is None:
            raise NotImplementedError(f"No append-only trigger for {schema_editor.connection.vendor}")
        for statement in statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("eventstore", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD}),
            _run({"postgresql": POSTGRES_BACKWARD, "sqlite": SQLITE_BACKWARD}),
        ),
    ]
