"""The onboarding request moved to the onboarding app: its tables are renamed, and this app forgets the models."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("organizations", "0004_drop_path_pattern_index")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.AlterModelTable("onboardinginvitee", "onboarding_onboardinginvitee"),
                migrations.AlterModelTable("onboardingrequest", "onboarding_onboardingrequest"),
            ],
            state_operations=[migrations.DeleteModel("onboardinginvitee"), migrations.DeleteModel("onboardingrequest")],
        )
    ]
