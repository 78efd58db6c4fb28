"""The bootstrap REST API: thin views over organizations.services."""

from dataclasses import asdict

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from temporal_bridge.client import TemporalUnavailable

from . import selectors, services
from .models import OnboardingRequest
from .serializers import (
    BootstrapAcceptedSerializer,
    BootstrapRequestSerializer,
    BootstrapStatusSerializer,
    ErrorSerializer,
)
from .validation import SubdomainTaken


class CanBootstrapOrganizations(permissions.BasePermission):
    message = "You need the permission organizations.bootstrap_organization."

    def has_permission(self, request, view) -> bool:
        return bool(
            request.user
            and request.user.is_authenticated
            and request.user.has_perm("organizations.bootstrap_organization")
        )


def _field_errors(exc: ValidationError) -> dict:
    """Service errors ("invitees.1.email": [...]) in DRF's nested shape ({"invitees": [{}, {"email": [...]}]}).

    Messages about the list as a whole ("invitees": [...]) stay a list of strings. When both kinds come at once,
    "invitees" becomes {"non_field_errors": [...], "1": {"email": [...]}}: the list's messages under DRF's
    non-field key and each row's by its index, as DRF's ListField reports them.
    """
    nested: dict = {}
    rows: dict[int, dict] = {}
    for key, messages in exc.message_dict.items():
        parts = key.split(".")
        if len(parts) == 3 and parts[0] == "invitees":
            rows.setdefault(int(parts[1]), {})[parts[2]] = messages
        else:
            nested[key] = messages
    if rows and "invitees" in nested:
        nested["invitees"] = {"non_field_errors": nested["invitees"], **{str(i): rows[i] for i in sorted(rows)}}
    elif rows:
        nested["invitees"] = [rows.get(i, {}) for i in range(max(rows) + 1)]
    return nested


def _status_response(request: Request, onboarding: OnboardingRequest) -> dict:
    found = selectors.bootstrap_status(onboarding)
    org = found.organization
    return {
        "organization_id": onboarding.organization_id,
        "workflow_id": found.workflow_id,
        "workflow_status": found.workflow_status,
        "organization": None
        if org is None
        else {
            f: getattr(org, f)
            for f in BootstrapStatusSerializer().fields["organization"].fields  # the documented fields only
        },
        "state": asdict(found.state) if found.state else None,
        "problem": found.problem,
        "temporal_url": found.temporal_url,
    }


class BootstrapOrganizationView(APIView):
    permission_classes = [CanBootstrapOrganizations]

    @extend_schema(
        summary="Start an organization bootstrap",
        request=BootstrapRequestSerializer,
        responses={
            202: BootstrapAcceptedSerializer,
            400: OpenApiResponse(description="Field errors, keyed by field (invitees by index)."),
            403: ErrorSerializer,
            409: OpenApiResponse(description="The subdomain is taken or a bootstrap for it is running."),
            503: ErrorSerializer,
        },
    )
    def post(self, request: Request) -> Response:
        if not settings.ENABLE_ORG_BOOTSTRAP:
            return Response({"detail": str(services.BootstrapDisabled())}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        serializer = BootstrapRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            with transaction.atomic():
                onboarding = services.onboarding_request_create(
                    name=data["name"],
                    type=data["type"],
                    subdomain=data["subdomain"],
                    parent_id=data["parent_id"],
                    invitees=data["invitees"],
                    created_by=request.user,
                )
                started = services.organization_bootstrap_start(request=onboarding, started_by=request.user)
        except SubdomainTaken as exc:
            return Response({"subdomain": exc.messages}, status=status.HTTP_409_CONFLICT)
        except ValidationError as exc:
            return Response(_field_errors(exc), status=status.HTTP_400_BAD_REQUEST)
        except services.BootstrapConflict as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        except TemporalUnavailable as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        url = request.build_absolute_uri(reverse("organizations-api:bootstrap-status", args=[started.organization_id]))
        body = BootstrapAcceptedSerializer(
            {"organization_id": started.organization_id, "workflow_id": started.workflow_id, "status_url": url}
        ).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": url})


class BootstrapStatusView(APIView):
    permission_classes = [CanBootstrapOrganizations]

    @extend_schema(
        summary="Follow an organization bootstrap",
        responses={200: BootstrapStatusSerializer, 403: ErrorSerializer, 404: ErrorSerializer},
    )
    def get(self, request: Request, organization_id) -> Response:
        onboarding = get_object_or_404(OnboardingRequest, organization_id=organization_id)
        return Response(BootstrapStatusSerializer(_status_response(request, onboarding)).data)
