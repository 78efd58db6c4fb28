"""The quickstart runs on SQLite: a delivery's claim and lease work there too (on this host's clock)."""

import textwrap

from tests.test_settings import manage

CLAIMS = textwrap.dedent(
    """
    import datetime, uuid
    from eventstore.events import EventMetadata
    from invitations import deliveries, services
    from invitations.models import InvitationDelivery
    from invitations.payloads import Invitee
    from tests.support.organizations import organization_make

    (invitation,) = services.invitations_generate(
        organization_id=organization_make(),
        invitees=[Invitee(email="q@example.org")],
        key_prefix="q",
        metadata=EventMetadata(),
    )
    now = datetime.datetime.now(datetime.UTC)
    delivery = InvitationDelivery.objects.create(
        id=uuid.uuid4(), invitation_id=invitation, kind="invitation", queued_at=now, updated_at=now
    )
    outcomes = [deliveries.delivery_claim(delivery_id=str(delivery.pk)).outcome for _ in range(2)]
    InvitationDelivery.objects.filter(pk=delivery.pk).update(claimed_until=now - datetime.timedelta(seconds=1))
    outcomes.append(deliveries.delivery_claim(delivery_id=str(delivery.pk)).outcome)
    print("outcomes", *outcomes)
    """
)


def test_a_claim_holds_and_runs_out_on_sqlite(tmp_path):
    env = {
        "DJANGO_SETTINGS_MODULE": "a4c.settings",
        "DJANGO_SECRET_KEY": "dev",
        "DJANGO_DEBUG": "true",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'quickstart.sqlite3'}",
    }
    migrated = manage("migrate", "--no-input", "-v", "0", env=env)
    assert migrated.returncode == 0, migrated.stderr
    result = manage("shell", "-c", CLAIMS, env=env)
    assert result.returncode == 0, result.stderr
    assert "outcomes send busy send" in result.stdout
