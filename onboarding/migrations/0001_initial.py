"""The onboarding request and its invitees, moved from the organizations app: the tables exist already (renamed by
organizations 0005), so this only adds the models to this app's state."""

import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

ROLES = [("organization_admin", "Organization admin"), ("clinician", "Clinician"), ("staff", "Staff")]


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("organizations", "0005_onboarding_request_moved"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="OnboardingRequest",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("organization_id", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                        ("name", models.CharField(max_length=100)),
                        (
                            "type",
                            models.CharField(
                                choices=[("provider", "Provider"), ("partner", "Partner")], default="provider", max_length=20
                            ),
                        ),
                        (
                            "subdomain",
                            models.CharField(
                                help_text="Lowercase letters, digits and hyphens; becomes <subdomain>.<base domain>.",
                                max_length=63,
                            ),
                        ),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("bootstrap_started_at", models.DateTimeField(blank=True, editable=False, null=True)),
                        ("bootstrap_attempts", models.PositiveIntegerField(default=0, editable=False)),
                        (
                            "created_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "parent",
                            models.ForeignKey(
                                blank=True,
                                db_constraint=False,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="organizations.organization",
                            ),
                        ),
                    ],
                    options={"ordering": ["-created_at"]},
                ),
                migrations.CreateModel(
                    name="OnboardingInvitee",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("email", models.EmailField(max_length=254)),
                        ("first_name", models.CharField(blank=True, max_length=150)),
                        ("last_name", models.CharField(blank=True, max_length=150)),
                        ("role", models.CharField(choices=ROLES, default="organization_admin", max_length=30)),
                        (
                            "request",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="invitees",
                                to="onboarding.onboardingrequest",
                            ),
                        ),
                    ],
                    options={"ordering": ["id"]},
                ),
            ],
        )
    ]
