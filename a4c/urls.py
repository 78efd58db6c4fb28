from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from a4c.apidocs import StaffSwaggerView
from a4c.authentication import RateLimitedAdminLoginForm
from a4c.metrics import metrics

admin.site.login_form = RateLimitedAdminLoginForm
admin.site.site_url = None  # there is no public site to view: the admin is the product

handler400 = "a4c.errors.bad_request"
handler403 = "a4c.errors.permission_denied"
handler404 = "a4c.errors.page_not_found"
handler500 = "a4c.errors.server_error"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/admin/", include("onboarding.urls")),
    path("invitations/", include("invitations.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", StaffSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("metrics", metrics, name="metrics"),
]
