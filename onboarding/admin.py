"""The onboarding admin: onboarding requests with the Bootstrap action, and the organization's page with its bootstrap
status, retry, cancel, DNS re-check and "Invite users" (the invitations' service)."""

from collections.abc import Callable

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from eventstore.admin import ReadOnlyModelAdmin
from invitations import services as invitation_services
from invitations.exceptions import InvalidInvitationData, OrganizationNotActive
from invitations.forms import InviteUsersFormSet
from invitations.models import Invitation, Membership
from invitations.payloads import Invitee
from organizations.models import Organization, OrganizationStatus

from . import selectors, services
from .forms import InviteeFormSet, OnboardingRequestForm
from .models import OnboardingInvitee, OnboardingRequest

BOOTSTRAP_PERMISSION = "organizations.bootstrap_organization"


def _can_bootstrap(request: HttpRequest) -> bool:
    return request.user.has_perm(BOOTSTRAP_PERMISSION)


def _status_url(organization_id) -> str:
    return reverse("admin:organizations_organization_bootstrap", args=[organization_id])


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class MembershipInline(_ReadOnlyInline):
    model = Membership
    verbose_name_plural = "members"
    fields = readonly_fields = ["member", "role", "granted_at"]
    ordering = ["granted_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")

    @admin.display(description="member")
    def member(self, obj: Membership) -> str:
        return obj.member_label


class InvitationInline(_ReadOnlyInline):
    model = Invitation
    fields = readonly_fields = ["email", "role", "status", "email_status", "emails_sent", "expires_at"]
    ordering = ["-created_at"]


@admin.register(Organization)
class OrganizationAdmin(ReadOnlyModelAdmin):
    """Organizations are a projection of events: browsable here, changed only through workflows."""

    list_display = ["name", "type", "subdomain", "status", "dns", "parent", "created_at", "activated_at", "progress"]
    list_filter = ["status", "type", "dns_status", "dns_provider"]
    search_fields = ["name", "subdomain", "domain", "=id"]
    list_select_related = ["parent"]
    ordering = ["-created_at"]
    readonly_fields = [f.name for f in Organization._meta.fields]
    inlines = [MembershipInline, InvitationInline]
    change_form_template = "admin/organizations/organization/change_form.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        organization = Organization.objects.filter(pk=object_id).only("status").first()
        can_invite = (
            organization is not None
            and organization.status == OrganizationStatus.ACTIVE
            and request.user.has_perm("invitations.invite_users")
        )
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "can_invite": can_invite})

    @admin.display(description="DNS", ordering="dns_status")
    def dns(self, obj: Organization) -> str:
        label = obj.get_dns_status_display()
        if obj.dns_provider == "local":
            return format_html(
                '{} <span title="Served by the local DNS provider, not the internet">(local)</span>', label
            )
        return label

    @admin.display(description="bootstrap")
    def progress(self, obj: Organization) -> str:
        return format_html('<a href="{}">status</a>', _status_url(obj.pk))

    def get_urls(self):
        def view(fn, post_only=False):
            return self.admin_site.admin_view(require_POST(fn) if post_only else fn)

        base = "organizations_organization_bootstrap"
        return [
            path("<uuid:organization_id>/bootstrap/", view(self.bootstrap_status), name=base),
            path("<uuid:organization_id>/bootstrap/retry/", view(self.bootstrap_retry, True), name=f"{base}_retry"),
            path("<uuid:organization_id>/bootstrap/cancel/", view(self.bootstrap_cancel, True), name=f"{base}_cancel"),
            path(
                "<uuid:organization_id>/bootstrap/recheck-dns/",
                view(self.bootstrap_recheck_dns, True),
                name=f"{base}_recheck_dns",
            ),
            path("<uuid:organization_id>/invite/", view(self.invite_users), name="organizations_organization_invite"),
            *super().get_urls(),
        ]

    def invite_users(self, request: HttpRequest, organization_id):
        if not request.user.has_perm("invitations.invite_users"):
            raise PermissionDenied
        organization = get_object_or_404(Organization, pk=organization_id)
        formset = InviteUsersFormSet(request.POST or None, prefix="invitees")
        refused = ""
        if request.method == "POST" and formset.is_valid():
            invitees = [Invitee(**form.cleaned_data) for form in formset if form.has_changed()]
            try:
                invited = invitation_services.organization_invite(
                    organization_id=str(organization.pk), invitees=invitees, requested_by_id=request.user.pk
                )
            except (OrganizationNotActive, InvalidInvitationData) as exc:
                refused = str(exc)
            else:
                roles = ", ".join(f"{i.email} ({i.role})" for i in invitees)
                self.log_change(request, organization, f"Invited {roles}")
                self.message_user(request, f"Invited {len(invitees)} to {organization.name}; emails are on the way.")
                if not invited.lifecycle_started:
                    self.message_user(
                        request,
                        "Temporal was unavailable: reminders and expiry start when each invitee answers, "
                        "or when an invitation is resent.",
                        messages.WARNING,
                    )
                return HttpResponseRedirect(reverse("admin:organizations_organization_change", args=[organization.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Invite users to {organization.name}",
            "organization": organization,
            "active": organization.status == OrganizationStatus.ACTIVE,
            "formset": formset,
            "refused": refused,
        }
        return TemplateResponse(request, "admin/organizations/invite.html", context)

    def _require_permission(self, request: HttpRequest) -> None:
        # admin_view only checks that the user is staff; the bootstrap pages need their own permission.
        if not _can_bootstrap(request):
            raise PermissionDenied

    def bootstrap_status(self, request: HttpRequest, organization_id):
        self._require_permission(request)
        onboarding = get_object_or_404(OnboardingRequest, organization_id=organization_id)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Bootstrap of {onboarding.name}",
            "status": selectors.bootstrap_status(onboarding),
            "bootstrap_enabled": services.bootstrap_enabled(),
            "can_bootstrap": True,
            # The timeline spans the invitations' events too (addresses, names): their data is for those who
            # may read the event store, not for everyone who may bootstrap.
            "show_event_data": request.user.has_perm("eventstore.view_event"),
        }
        template = "admin/organizations/bootstrap_status.html"
        if request.GET.get("partial") == "progress":
            template += "#progress"  # the fragment the page re-fetches to refresh itself
        return TemplateResponse(request, template, context)

    def _act(self, request: HttpRequest, organization_id, action: Callable, done: str, log_message: str):
        self._require_permission(request)
        onboarding = get_object_or_404(OnboardingRequest, organization_id=organization_id)
        try:
            action()
        except (
            services.BootstrapDisabled,
            services.BootstrapConflict,
            services.BootstrapUnavailable,
            ValidationError,
        ) as exc:
            self.message_user(request, f"{onboarding.name}: {_message(exc)}", messages.ERROR)
        else:
            organization = Organization.objects.filter(pk=organization_id).first()
            self.log_change(request, organization or onboarding, log_message)
            self.message_user(request, done.format(name=onboarding.name), messages.SUCCESS)
        return HttpResponseRedirect(_status_url(organization_id))

    def bootstrap_retry(self, request: HttpRequest, organization_id):
        return self._act(
            request,
            organization_id,
            lambda: services.organization_bootstrap_retry(organization_id=organization_id, started_by=request.user),
            "A new bootstrap run of {name} started.",
            "Retried the bootstrap.",
        )

    def bootstrap_cancel(self, request: HttpRequest, organization_id):
        return self._act(
            request,
            organization_id,
            lambda: services.organization_bootstrap_cancel(organization_id=organization_id),
            "Cancellation of {name} requested: the bootstrap compensates, then ends as failed.",
            "Cancelled the bootstrap.",
        )

    def bootstrap_recheck_dns(self, request: HttpRequest, organization_id):
        return self._act(
            request,
            organization_id,
            lambda: services.organization_dns_recheck(organization_id=organization_id),
            "DNS re-check of {name} requested.",
            "Requested a DNS re-check.",
        )


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc)


class OnboardingInviteeInline(admin.TabularInline):
    model = OnboardingInvitee
    formset = InviteeFormSet
    extra = 1
    min_num = 1
    fields = ["email", "first_name", "last_name", "role"]

    # What a bootstrap invites: fixed once it starts; until then, for staff with the invitee permissions.
    def has_add_permission(self, request, obj=None) -> bool:
        return _not_started(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return _not_started(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return _not_started(obj) and super().has_delete_permission(request, obj)


def _not_started(onboarding: OnboardingRequest | None) -> bool:
    return onboarding is None or onboarding.bootstrap_started_at is None


@admin.register(OnboardingRequest)
class OnboardingRequestAdmin(admin.ModelAdmin):
    form = OnboardingRequestForm
    inlines = [OnboardingInviteeInline]
    list_display = ["name", "subdomain", "type", "state", "created_by", "created_at"]
    list_filter = ["type", "created_at"]
    search_fields = ["name", "subdomain", "=organization_id", "invitees__email"]
    readonly_fields = ["organization_id", "created_by", "created_at", "bootstrap_started_at", "bootstrap_attempts"]
    actions = ["bootstrap_organization"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.bootstrap_started_at is not None:
            return ["name", "type", "subdomain", "parent", *self.readonly_fields]
        return self.readonly_fields

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None and request.method == "POST":
            # Read again under a row lock held to the end of the save (changeform_view is atomic): a bootstrap
            # started meanwhile waits for it, instead of having its start overwritten by the stale form.
            obj = type(obj).objects.select_for_update().get(pk=obj.pk)
        return obj

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    # A started request is how its bootstrap is found (status page, cancel, retry, the API): it stays. Bulk
    # deletion checks this for every selected object too.
    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.bootstrap_started_at is not None:
            return False
        return super().has_delete_permission(request, obj)

    def has_bootstrap_permission(self, request) -> bool:
        return _can_bootstrap(request)

    @admin.display(description="bootstrap")
    def state(self, obj: OnboardingRequest) -> str:
        if obj.bootstrap_started_at is None:
            return "not started"
        organization = Organization.objects.filter(pk=obj.organization_id).only("status").first()
        label = organization.get_status_display() if organization else "starting"
        return format_html('<a href="{}">{}</a>', _status_url(obj.organization_id), label)

    @admin.action(description="Bootstrap organization", permissions=["bootstrap"])
    def bootstrap_organization(self, request: HttpRequest, queryset):
        if not services.bootstrap_enabled():
            self.message_user(request, str(services.BootstrapDisabled()), messages.ERROR)
            return None
        if request.POST.get("confirm") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": "Bootstrap organizations?",
                "opts": self.model._meta,
                "queryset": queryset,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                "not_started": [r for r in queryset.prefetch_related("invitees") if r.bootstrap_started_at is None],
                "already_started": [r for r in queryset if r.bootstrap_started_at is not None],
            }
            return TemplateResponse(request, "admin/organizations/bootstrap_confirmation.html", context)
        started = 0
        for onboarding in queryset:
            try:
                services.organization_bootstrap_start(request=onboarding, started_by=request.user)
            except services.BootstrapDisabled as exc:
                self.message_user(request, str(exc), messages.ERROR)
                break
            except (services.BootstrapConflict, services.BootstrapUnavailable, ValidationError) as exc:
                self.message_user(request, f"{onboarding.name}: {_message(exc)}", messages.ERROR)
                continue
            started += 1
            self.log_change(request, onboarding, "Started the organization bootstrap.")
        if started:
            self.message_user(
                request,
                f"Started {started} bootstrap{'s' if started != 1 else ''}. Follow each from its status link.",
                messages.SUCCESS,
            )
        return None
