"""Invitations in the admin: read-only projections, with Resend and Revoke actions behind their own
permissions, each confirmed first (modelled on django.contrib.admin.actions.delete_selected)."""

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.utils.html import format_html_join

from temporal_bridge.client import workflow_ui_url

from . import services
from .models import Invitation, InvitationDelivery, InvitationStatus, Membership


class ReadOnlyMixin:
    """Projections change only through events: no add, change or delete in the admin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class DeliveryInline(ReadOnlyMixin, admin.TabularInline):
    model = InvitationDelivery
    fields = [
        "kind",
        "status",
        "attempts",
        "last_error",
        "queued_at",
        "sent_at",
        "failed_at",
        "reported_at",
        "requested_by",
    ]
    readonly_fields = fields
    ordering = ["queued_at"]
    extra = 0
    verbose_name_plural = "Email deliveries"

    def has_view_permission(self, request, obj=None):
        # Part of the invitation's history: whoever may see the invitation sees its deliveries.
        return request.user.has_perm("invitations.view_invitation")


def _confirm(modeladmin, request, queryset, *, action: str, title: str, question: str, eligible):
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "question": question,
        "queryset": queryset,
        "eligible": eligible,
        "opts": modeladmin.model._meta,
        "action": action,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media,
    }
    return TemplateResponse(request, "admin/invitations/invitation/action_confirmation.html", context)


@admin.action(permissions=["resend"], description="Resend selected invitations (new link)")
def resend_selected(modeladmin, request, queryset):
    pending = [i for i in queryset if i.status == InvitationStatus.PENDING]
    if not request.POST.get("post"):
        question = "Email each selected pending invitation again with a new link? Earlier links stop working."
        return _confirm(
            modeladmin,
            request,
            queryset,
            action="resend_selected",
            title="Resend invitations",
            question=question,
            eligible=pending,
        )
    resent = 0
    for invitation in pending:
        if services.invitation_resend(invitation_id=str(invitation.pk), requested_by_id=request.user.pk):
            modeladmin.log_change(request, invitation, "Resent the invitation with a new link.")
            resent += 1
    modeladmin.message_user(request, f"Resent {resent} invitation(s).", messages.SUCCESS)
    if skipped := len(queryset) - resent:
        modeladmin.message_user(request, f"Skipped {skipped} invitation(s) that are not pending.", messages.WARNING)
    return None


@admin.action(permissions=["revoke"], description="Revoke selected invitations")
def revoke_selected(modeladmin, request, queryset):
    pending = [i for i in queryset if i.status == InvitationStatus.PENDING]
    if not request.POST.get("post"):
        question = "Revoke each selected pending invitation? Its link stops working at once."
        return _confirm(
            modeladmin,
            request,
            queryset,
            action="revoke_selected",
            title="Revoke invitations",
            question=question,
            eligible=pending,
        )
    revoked = 0
    for invitation in pending:
        reason = f"Revoked by {request.user.get_username()}"
        if services.invitation_revoke(invitation_id=str(invitation.pk), reason=reason, requested_by_id=request.user.pk):
            modeladmin.log_change(request, invitation, "Revoked the invitation.")
            revoked += 1
    modeladmin.message_user(request, f"Revoked {revoked} invitation(s).", messages.SUCCESS)
    if skipped := len(queryset) - revoked:
        modeladmin.message_user(request, f"Skipped {skipped} invitation(s) that are not pending.", messages.WARNING)
    return None


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["email", "organization", "role", "status", "email_status", "expires_at", "created_at"]
    list_filter = ["status", "email_status", "role"]
    search_fields = ["email_canonical", "organization__name", "first_name", "last_name"]
    list_select_related = ["organization"]
    date_hierarchy = "created_at"
    actions = [resend_selected, revoke_selected]
    inlines = [DeliveryInline]
    fields = [
        "id",
        "organization",
        "email",
        "email_canonical",
        "first_name",
        "last_name",
        "role",
        "status",
        "status_reason",
        "email_status",
        "emails_sent",
        "last_email_error",
        "expires_at",
        "invited_by",
        "accepted_by",
        "workflows",
        "created_at",
        "last_emailed_at",
        "reminded_at",
        "accepted_at",
        "declined_at",
        "revoked_at",
        "expired_at",
    ]
    readonly_fields = fields

    def has_resend_permission(self, request):
        return request.user.has_perm("invitations.resend_invitation")

    def has_revoke_permission(self, request):
        return request.user.has_perm("invitations.revoke_invitation")

    @admin.display(description="Workflows in Temporal")
    def workflows(self, obj: Invitation):
        links = [("Invitation lifecycle", workflow_ui_url(obj.workflow_id))]
        if obj.bootstrap_workflow_id:
            links.append(("Organization bootstrap", workflow_ui_url(obj.bootstrap_workflow_id)))
        return format_html_join(
            " · ", '<a href="{}" target="_blank" rel="noopener noreferrer">{}</a>', ((u, t) for t, u in links)
        )


@admin.register(Membership)
class MembershipAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["user", "organization", "role", "granted_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "user__username", "organization__name"]
    list_select_related = ["user", "organization"]
    readonly_fields = ["user", "organization", "role", "invitation", "granted_at", "updated_at"]
