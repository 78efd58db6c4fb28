"""What Django's debug page and error emails may show of the settings."""

import re

from django.views.debug import SafeExceptionReporterFilter


class SettingsRedactingFilter(SafeExceptionReporterFilter):
    """Django hides settings named like API, TOKEN, KEY, SECRET, PASS or SIGNATURE. Ours also hold credentials in
    URLs (CELERY_BROKER_URL, REDIS_URL, CACHES' LOCATION, DATABASES), whose names match none of those."""

    hidden_settings = re.compile(
        rf"{SafeExceptionReporterFilter.hidden_settings.pattern}|URL|LOCATION|BROKER|DATABASE", flags=re.IGNORECASE
    )
