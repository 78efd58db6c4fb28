from django.core.exceptions import ValidationError
from rest_framework import serializers

from .payloads import Role


class InviteeSerializer(serializers.Serializer):
    email = serializers.EmailField()
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    # Required by both APIs: a request that leaves it out is refused, never given a role (the old default, org admin).
    role = serializers.ChoiceField(choices=[r.value for r in Role])


class InviteRequestSerializer(serializers.Serializer):
    invitees = InviteeSerializer(many=True, allow_empty=False, help_text="People to invite, each with a role.")


class InvitedSerializer(serializers.Serializer):
    invitation_ids = serializers.ListField(child=serializers.UUIDField())
    lifecycle_started = serializers.BooleanField(
        help_text="False when Temporal was unavailable: the invitations and emails stand, and each invitation's "
        "reminder and expiry are scheduled when the invitee answers or support resends it."
    )


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


def api_errors(exc: ValidationError) -> dict:
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
