"""The project's URLs and error handlers, plus a view that fails under /api/ and one outside it."""

from django.urls import path

from a4c.urls import handler400, handler403, handler404, handler500  # noqa: F401 (read by Django's resolver)
from a4c.urls import urlpatterns as project_urlpatterns


def fail(request):
    raise RuntimeError("a view that fails")


urlpatterns = [path("api/fail", fail), path("fail", fail), *project_urlpatterns]
