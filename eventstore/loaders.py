"""psycopg loader settings for reads that fetch many rows (a rebuild's)."""

from django.conf import settings


def fast_timestamps(cursor) -> None:
    """Read timestamptz columns of this Django cursor's next fetch with psycopg's C loader (PostgreSQL).

    Django's own loader pins every value's tzinfo in Python, which a rebuild pays for millions of values. The C
    loader returns the same instants, in the session's time zone (UTC, as Django sets it up when USE_TZ is on).
    """
    if cursor.db.vendor != "postgresql" or not settings.USE_TZ:
        return
    from psycopg.types.datetime import TimestamptzLoader  # imported here: SQLite needs no driver

    cursor.cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
