"""The API's browsable docs: for staff, like the admin, whose login page everyone else is sent to first."""

from django.contrib.auth.views import redirect_to_login
from django.urls import reverse
from drf_spectacular.views import SpectacularSwaggerView
from rest_framework import exceptions


class StaffSwaggerView(SpectacularSwaggerView):
    def handle_exception(self, exc):
        # A person following the docs link wants a login form, not a bare 403; failed credentials keep DRF's answer.
        refused = isinstance(exc, exceptions.NotAuthenticated | exceptions.PermissionDenied)
        if refused and not self.request.user.is_staff:
            return redirect_to_login(self.request.get_full_path(), reverse("admin:login"))
        return super().handle_exception(exc)
