"""URLs for bench/invitations.py's web phase (bench/invitations_wsgi.py): the product's, plus a bare view as the
baseline."""

from django.http import HttpResponse
from django.urls import path

from a4c.urls import urlpatterns as product


def bare(request):
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [path("bench/bare/", bare), *product]
