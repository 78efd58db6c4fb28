"""The check that rolls back a one-round-trip append whose projection statement missed a row (PostgreSQL only).

`eventstore.postgres` sends an append outside a transaction as one statement that takes the lock, inserts the
events and writes the projections in data-modifying CTEs. Plain SQL cannot raise an error, and the implicit
transaction commits unless the statement fails, so it calls this function when a projection wrote fewer rows than
it had events (an unknown organization, say): it raises, and nothing is written.
"""

from django.db import migrations

# Raised with this SQLSTATE, which nothing else uses, so the caller can tell it from any other error.
SQLSTATE = "A4C01"

POSTGRES_FORWARD = f"""
CREATE FUNCTION eventstore_append_check(appended bigint, written bigint, expected integer, what text)
RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF appended > 0 AND written <> expected THEN
        RAISE EXCEPTION '% wrote % rows for % events', what, written, expected USING ERRCODE = '{SQLSTATE}';
    END IF;
    RETURN true;
END;
$$;
"""
POSTGRES_BACKWARD = "DROP FUNCTION IF EXISTS eventstore_append_check(bigint, bigint, integer, text);"


def _run(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)  # None: the RAISE format's % are not placeholders

    return run


class Migration(migrations.Migration):
    dependencies = [("eventstore", "0002_append_only_triggers")]

    operations = [migrations.RunPython(_run(POSTGRES_FORWARD), _run(POSTGRES_BACKWARD))]
