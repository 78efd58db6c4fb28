"""Drop the "_like" index of the organization path: subtree queries are range scans on the plain index
(organizations.selectors.organization_subtree), so every insert and non-HOT update paid for an unused index."""

from django.db import migrations

from eventstore.migration_operations import drop_pattern_indexes


class Migration(migrations.Migration):
    dependencies = [("organizations", "0003_onboarding_request"), ("eventstore", "0004_drop_pattern_indexes")]

    operations = [drop_pattern_indexes("organizations_organization", ["path"])]
