"""The bootstrap REST API: thin views over onboarding.services."""

from collections.abc import Callable
from dataclasses import asdict
from functools import partial

from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from invitations.api import HasPermission
from invitations.serializers import api_errors

from . import selectors, services
from .models import OnboardingRequest
from .serializers import (
    BootstrapAcceptedSerializer,
    BootstrapRequestSerializer,
    BootstrapStatusSerializer,
    ErrorSerializer,
    NotStartedSerializer,
)


class CanBootstrapOrganizations(HasPermission):
    permission = "organizations.bootstrap_organization"


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


def _status_url(request: Request, organization_id) -> str:
    return request.build_absolute_uri(reverse("organizations-api:bootstrap-status", args=[organization_id]))


NOT_STARTED = "Temporal is unavailable; the request is kept: POST its status_url to start it later."


def _start_response(request: Request, start: Callable[[], services.BootstrapStarted]) -> Response:
    """202 for a started run; else 400, 409, or 503 (the request is kept: a POST to its status URL starts it)."""
    try:
        started = start()
    except services.SubdomainTaken as exc:
        return Response({"subdomain": exc.messages}, status=status.HTTP_409_CONFLICT)
    except ValidationError as exc:
        return Response(api_errors(exc), status=status.HTTP_400_BAD_REQUEST)
    except services.BootstrapConflict as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    except services.BootstrapNotStarted as exc:
        # Plain, for any client: the service has logged what Temporal said.
        body = {"detail": NOT_STARTED, "organization_id": exc.organization_id}
        body["status_url"] = _status_url(request, exc.organization_id)
        return Response(NotStartedSerializer(body).data, status=status.HTTP_503_SERVICE_UNAVAILABLE)
    except (services.BootstrapDisabled, services.BootstrapUnavailable) as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
    url = _status_url(request, started.organization_id)
    body = BootstrapAcceptedSerializer(
        {"organization_id": started.organization_id, "workflow_id": started.workflow_id, "status_url": url}
    ).data
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": url})


class BootstrapOrganizationView(APIView):
    permission_classes = [CanBootstrapOrganizations]
    parser_classes = [JSONParser]  # what the schema lists; a form-encoded body gets 415

    @extend_schema(
        summary="Start an organization bootstrap",
        request=BootstrapRequestSerializer,
        responses={
            202: BootstrapAcceptedSerializer,
            400: OpenApiResponse(description="Field errors, keyed by field (invitees by index)."),
            403: ErrorSerializer,
            409: OpenApiResponse(description="The subdomain is taken or a bootstrap for it is running."),
            503: OpenApiResponse(
                NotStartedSerializer,
                description="Bootstrapping is switched off (detail only), or Temporal could not take the start: "
                "the request is kept, and a POST to its status_url starts it.",
            ),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = BootstrapRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data

        @transaction.atomic  # the request is kept only if it passes the start's checks too
        def create_and_start() -> services.BootstrapStarted:
            onboarding = services.onboarding_request_create(
                name=data["name"],
                type=data["type"],
                subdomain=data["subdomain"],
                parent_id=data["parent_id"],
                invitees=data["invitees"],
                created_by=request.user,
            )
            return services.organization_bootstrap_start(request=onboarding, started_by=request.user)

        return _start_response(request, create_and_start)


class BootstrapStatusView(APIView):
    permission_classes = [CanBootstrapOrganizations]

    @extend_schema(
        summary="Follow an organization bootstrap",
        responses={200: BootstrapStatusSerializer, 403: ErrorSerializer, 404: ErrorSerializer},
    )
    def get(self, request: Request, organization_id) -> Response:
        onboarding = get_object_or_404(OnboardingRequest, organization_id=organization_id)
        return Response(BootstrapStatusSerializer(_status_response(request, onboarding)).data)

    @extend_schema(
        summary="Start a kept request's bootstrap, or retry a failed one",
        operation_id="admin_organizations_bootstrap_start_or_retry",
        request=None,
        responses={
            202: BootstrapAcceptedSerializer,
            400: OpenApiResponse(description="The kept request no longer passes validation, by field."),
            403: ErrorSerializer,
            404: ErrorSerializer,
            409: OpenApiResponse(description="The bootstrap is running or done, or its subdomain is taken."),
            503: NotStartedSerializer,
        },
    )
    def post(self, request: Request, organization_id) -> Response:
        """Start the bootstrap of a request that Temporal could not take (the 503 of the first POST), or start a
        new run of a failed bootstrap: same organization, next attempt."""
        onboarding = get_object_or_404(OnboardingRequest, organization_id=organization_id)
        if onboarding.bootstrap_started_at is None:
            start = partial(services.organization_bootstrap_start, request=onboarding, started_by=request.user)
        else:
            start = partial(
                services.organization_bootstrap_retry,
                organization_id=organization_id,
                started_by=request.user,
            )
        return _start_response(request, start)
