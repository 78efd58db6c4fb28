"""The write paths carry only the indexes their reads use, and those reads still find their index."""

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db

WRITE_PATH_TABLES = [
    "eventstore_event",
    "organizations_organization",
    "invitations_invitation",
    "invitations_invitationtoken",
]


def _plan(sql: str, params: list) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # tiny test tables: ask which index would serve
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_no_prefix_pattern_indexes_on_the_write_paths():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.relname, i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "JOIN pg_class t ON t.oid = x.indrelid JOIN pg_opclass o ON o.oid = ANY(x.indclass) "
            "WHERE t.relname = ANY(%s) AND o.opcname LIKE '%%pattern_ops'",
            [WRITE_PATH_TABLES],
        )
        assert cursor.fetchall() == []


@pytest.mark.parametrize(
    ("sql", "params", "index"),
    [
        ("SELECT 1 FROM eventstore_event WHERE idempotency_key = %s", ["k"], "eventstore_event_idempotency_key"),
        ("SELECT 1 FROM eventstore_event WHERE workflow_id = %s", ["w"], "eventstore_event_workflow_id"),
        ("SELECT 1 FROM eventstore_event WHERE correlation_id = %s", ["c"], "eventstore_event_correlation_id"),
        (
            "SELECT 1 FROM organizations_organization WHERE path >= %s AND path < %s",
            ["ab", "abg"],
            "organizations_organization_path",
        ),
    ],
)
def test_exact_and_subtree_lookups_still_use_an_index(sql, params, index):
    assert f"using {index}" in _plan(sql, params).lower()
