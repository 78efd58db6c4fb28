"""Django's debug page never shows a credential, whichever setting holds it."""

import pytest
from django.test import Client

BROKER_PASSWORD = "br0ker-pa55word-for-the-test"
CACHE_PASSWORD = "cache-pa55word-for-the-test"


@pytest.mark.urls("tests.support.failing_urls")
def test_the_technical_500_page_hides_passwords_in_url_settings(settings):
    settings.DEBUG = True
    settings.CELERY_BROKER_URL = f"redis://:{BROKER_PASSWORD}@redis.internal:6379/0"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"redis://:{CACHE_PASSWORD}@redis.internal:6379/1",
        }
    }
    response = Client(raise_request_exception=False).get("/fail", HTTP_ACCEPT="text/html")
    assert response.status_code == 500
    page = response.content.decode()
    assert "a view that fails" in page and "CELERY_BROKER_URL" in page  # Django's technical page, settings listed
    assert BROKER_PASSWORD not in page
    assert CACHE_PASSWORD not in page
