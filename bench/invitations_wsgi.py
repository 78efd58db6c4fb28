"""The WSGI app of bench/invitations.py's web phase: the product's, with a bare view added to its URLs."""

import os

from django.core.wsgi import get_wsgi_application
from django.test.utils import override_settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "a4c.settings")
application = get_wsgi_application()
# The product's settings as they are but for this one (a settings module of our own would copy them all with import *).
override_settings(ROOT_URLCONF="bench.invitations_urls").enable()
