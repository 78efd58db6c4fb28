"""The subdomain's help text without angle brackets, which the admin took for HTML tags (state only)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("onboarding", "0001_initial")]

    operations = [
        migrations.AlterField(
            model_name="onboardingrequest",
            name="subdomain",
            field=models.CharField(
                help_text="Lowercase letters, digits and hyphens; the first part of the organization's address.",
                max_length=63,
            ),
        ),
    ]
