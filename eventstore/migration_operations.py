"""Migration operations shared by the apps' migrations."""

from django.db import migrations


def drop_pattern_indexes(table: str, columns: list[str]) -> migrations.RunPython:
    """Drop the `varchar_pattern_ops` ("_like") indexes Django adds on PostgreSQL beside the plain index of an
    indexed or unique CharField. They serve only LIKE 'prefix%' queries; where none are made they are pure
    write cost on every insert. Other databases have no such index, so there is nothing to do there."""

    def forward(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                "SELECT i.relname, a.attname FROM pg_index x "
                "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
                "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0] "
                "JOIN pg_opclass o ON o.oid = x.indclass[0] "
                "WHERE t.relname = %s AND x.indnatts = 1 AND o.opcname IN ('varchar_pattern_ops', 'text_pattern_ops')",
                [table],
            )
            names = [name for name, column in cursor.fetchall() if column in columns]
        for name in names:
            schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")

    def backward(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for column in columns:
            name = schema_editor.quote_name(f"{table}_{column}_like"[:63])
            schema_editor.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON {schema_editor.quote_name(table)} "
                f"({schema_editor.quote_name(column)} varchar_pattern_ops)"
            )

    return migrations.RunPython(forward, backward)
