"""The invitations REST API: inviting people to an active organization, a thin view over invitations.services."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from organizations.models import Organization

from . import services
from .exceptions import InvalidInvitees, OrganizationNotActive
from .payloads import Invitee
from .serializers import ErrorSerializer, InvitedSerializer, InviteRequestSerializer, api_errors


class HasPermission(permissions.BasePermission):
    """The API's permissions are model permissions, checked for any authenticated user (not only staff)."""

    permission = ""

    @property
    def message(self) -> str:
        return f"You need the permission {self.permission}."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.has_perm(self.permission))


class CanInviteUsers(HasPermission):
    permission = "invitations.invite_users"


class OrganizationInvitationsView(APIView):
    permission_classes = [CanInviteUsers]
    parser_classes = [JSONParser]  # what the schema lists; a form-encoded body gets 415

    @extend_schema(
        summary="Invite people to an active organization",
        request=InviteRequestSerializer,
        responses={
            201: InvitedSerializer,
            400: OpenApiResponse(
                description="Field errors, keyed by field (invitees by index): bad input, or an invitee already has "
                "a pending invitation or belongs to the organization; nothing was written."
            ),
            403: ErrorSerializer,
            404: ErrorSerializer,
            409: OpenApiResponse(ErrorSerializer, description="The organization is not active."),
        },
    )
    def post(self, request: Request, organization_id) -> Response:
        get_object_or_404(Organization, pk=organization_id)
        serializer = InviteRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invitees = [Invitee(**row) for row in serializer.validated_data["invitees"]]
        try:
            invited = services.organization_invite(
                organization_id=str(organization_id), invitees=invitees, requested_by_id=request.user.pk
            )
        except OrganizationNotActive as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        except InvalidInvitees as exc:
            return Response(api_errors(exc), status=status.HTTP_400_BAD_REQUEST)
        body = {"invitation_ids": invited.invitation_ids, "lifecycle_started": invited.lifecycle_started}
        return Response(InvitedSerializer(body).data, status=status.HTTP_201_CREATED)
