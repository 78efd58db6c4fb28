"""Drop the "_like" indexes of the invitation's canonical email and the token's selector: both are only ever
compared whole, and each invitation and each email sent paid for an unused index entry."""

from django.db import migrations

from eventstore.migration_operations import drop_pattern_indexes


class Migration(migrations.Migration):
    dependencies = [("invitations", "0001_initial"), ("eventstore", "0004_drop_pattern_indexes")]

    operations = [
        drop_pattern_indexes("invitations_invitation", ["email_canonical"]),
        drop_pattern_indexes("invitations_invitationtoken", ["selector"]),
    ]
