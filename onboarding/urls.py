from django.urls import path

from invitations.api import OrganizationInvitationsView

from .api import BootstrapOrganizationView, BootstrapStatusView

app_name = "organizations-api"

urlpatterns = [
    path("organizations/bootstrap", BootstrapOrganizationView.as_view(), name="bootstrap"),
    path("organizations/<uuid:organization_id>/bootstrap", BootstrapStatusView.as_view(), name="bootstrap-status"),
    path(
        "organizations/<uuid:organization_id>/invitations",
        OrganizationInvitationsView.as_view(),
        name="organization-invitations",
    ),
]
