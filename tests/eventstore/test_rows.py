"""The projection row helpers' fast paths (eventstore.rows) write and read what their ORM versions do."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from eventstore.rows import rows_by_pk, rows_by_pk_orm, rows_insert, rows_insert_orm, rows_update, rows_update_orm
from organizations.models import Organization

ALIASES = ["default", "sqlite"]
FIELDS = [f.attname for f in Organization._meta.concrete_fields]
AT = datetime(2026, 12, 1, 9, 30, 15, 123456, tzinfo=UTC)


def row(n: int, parent_id=None, **fields) -> dict:
    """A full row (every attname), the way the organization projection builds them."""
    org_id = uuid.uuid4()
    values = {
        "id": org_id,
        "name": f"Org {n} «Ünïcode»",
        "type": "provider",
        "parent_id": parent_id,
        "path": org_id.hex,
        "depth": 0 if parent_id is None else 1,
        "subdomain": f"s{org_id.hex[:12]}",
        "domain": f"s{org_id.hex[:12]}.a4c.test",
        "status": "pending",
        "dns_status": "not_configured",
        "dns_provider": "",
        "dns_record_id": "",
        "bootstrap_attempt": n,
        "failed_step": "",
        "failure_message": "it's 'quoted' \\ and \"double\"\nand two lines",
        "created_at": AT,
        "updated_at": AT + timedelta(seconds=n),
        "activated_at": None,
        "deactivated_at": AT + timedelta(days=n) if n % 2 else None,
        "failed_at": None,
        "version": n,
        **fields,
    }
    assert list(values) == FIELDS
    return values


def stored(pks, using: str) -> list[dict]:
    """The rows as the ORM reads them, without their ids, in the order of `pks`."""
    by_pk = {r["id"]: r for r in rows_by_pk_orm(Organization, pks, using=using)}
    return [{k: v for k, v in by_pk[pk].items() if k not in ("id", "path", "subdomain", "domain")} for pk in pks]


@pytest.mark.django_db(databases=ALIASES)
@pytest.mark.parametrize("using", ALIASES)
@pytest.mark.parametrize("count", [1, 3])
def test_fast_inserts_and_updates_write_what_the_orm_writes(using, count):
    fast, plain = [row(n) for n in range(1, count + 1)], [row(n) for n in range(1, count + 1)]
    rows_insert(Organization, fast, using=using)
    rows_insert_orm(Organization, plain, using=using)
    fast_pks, plain_pks = [r["id"] for r in fast], [r["id"] for r in plain]
    assert stored(fast_pks, using) == stored(plain_pks, using)

    changes = {"status": "active", "activated_at": AT + timedelta(hours=1), "failure_message": "", "version": 9}
    missing = [{"id": uuid.uuid4(), **changes}] if count > 1 else []  # one row alone takes its own statement
    fields = list(changes)
    updated_fast = rows_update(Organization, [{"id": pk, **changes} for pk in fast_pks] + missing, fields, using=using)
    updated_plain = rows_update_orm(
        Organization, [{"id": pk, **changes} for pk in plain_pks] + missing, fields, using=using
    )
    assert updated_fast == updated_plain == count
    unknown = [{"id": uuid.uuid4(), **changes}]
    assert rows_update(Organization, unknown, fields, using=using) == 0
    assert rows_update_orm(Organization, unknown, fields, using=using) == 0
    assert stored(fast_pks, using) == stored(plain_pks, using)
    assert stored(fast_pks, using)[0]["status"] == "active"


@pytest.mark.django_db(databases=ALIASES)
@pytest.mark.parametrize("using", ALIASES)
def test_fast_reads_by_primary_key_return_what_the_orm_returns(using):
    parent = row(1)
    rows = [parent, row(2, parent_id=parent["id"]), row(3)]
    rows_insert_orm(Organization, rows, using=using)
    pks = [r["id"] for r in rows] + [uuid.uuid4()]  # one unknown key
    key = lambda r: str(r["id"])  # noqa: E731
    fast = sorted(rows_by_pk(Organization, pks, using=using), key=key)
    assert fast == sorted(rows_by_pk_orm(Organization, pks, using=using), key=key)
    assert fast == sorted(rows, key=key)
    assert rows_by_pk(Organization, [], using=using) == rows_by_pk_orm(Organization, [], using=using) == []
