import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "a4c.settings")

app = Celery("a4c")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
