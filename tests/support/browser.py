"""Headless Chromium (Debian's package) driven by Playwright. Never `playwright install`: the system browser
is used as it is."""

import os
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def chromium() -> Iterator:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on the test thread, which trips Django's async-safety check
    # for the ORM calls the test itself makes; nothing here runs Django code inside that loop.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                yield browser
            finally:
                browser.close()
                # With Playwright's loop on the thread, Django's context-local storage handed the test its own
                # connections; close them here, in that context, or they outlive the test database.
                connections.close_all()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
