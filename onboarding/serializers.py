from rest_framework import serializers

from invitations.serializers import ErrorSerializer, InviteeSerializer
from organizations.models import OrganizationType


class BootstrapRequestSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="1 to 100 characters.")
    type = serializers.ChoiceField(choices=OrganizationType.choices)
    subdomain = serializers.CharField(max_length=63, help_text="A DNS label: lowercase letters, digits, hyphens.")
    parent_id = serializers.UUIDField(required=False, allow_null=True, default=None)
    invitees = InviteeSerializer(many=True, help_text="At least one, and at least one organization admin.")


class BootstrapAcceptedSerializer(serializers.Serializer):
    organization_id = serializers.UUIDField()
    workflow_id = serializers.CharField()
    status_url = serializers.URLField()


class StepSerializer(serializers.Serializer):
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=["pending", "running", "done", "failed", "compensated"])
    attempts = serializers.IntegerField()
    started_at = serializers.CharField(allow_null=True)
    finished_at = serializers.CharField(allow_null=True)
    error = serializers.CharField()


class BootstrapStateSerializer(serializers.Serializer):
    status = serializers.CharField()
    attempt = serializers.IntegerField()
    current_step = serializers.CharField()
    steps = StepSerializer(many=True)
    compensation = StepSerializer(many=True)
    dns = serializers.DictField()
    invitations = serializers.DictField()
    errors = serializers.ListField(child=serializers.CharField())


class OrganizationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    type = serializers.CharField()
    subdomain = serializers.CharField()
    domain = serializers.CharField()
    status = serializers.CharField()
    dns_status = serializers.CharField()
    dns_provider = serializers.CharField()
    failed_step = serializers.CharField()
    failure_message = serializers.CharField()
    created_at = serializers.DateTimeField()
    activated_at = serializers.DateTimeField(allow_null=True)


class BootstrapStatusSerializer(serializers.Serializer):
    organization_id = serializers.UUIDField()
    workflow_id = serializers.CharField()
    workflow_status = serializers.CharField(
        help_text="Temporal's execution status, or NOT_STARTED, STARTING, NOT_KEPT (history past retention) or UNKNOWN."
    )
    organization = OrganizationSerializer(allow_null=True)
    state = BootstrapStateSerializer(
        allow_null=True, help_text="Live workflow state; null when Temporal is unreachable."
    )
    problem = serializers.CharField()
    temporal_url = serializers.URLField()


class NotStartedSerializer(ErrorSerializer):
    """Temporal could not take the start: the request is kept, and POST to status_url starts it later."""

    organization_id = serializers.UUIDField()
    status_url = serializers.URLField()
