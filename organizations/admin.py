from django.contrib import admin

from .models import Organization


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    """Organizations are a projection of events: browsable here, changed only through workflows."""

    list_display = ["name", "type", "subdomain", "status", "dns_status", "parent", "created_at", "activated_at"]
    list_filter = ["status", "type", "dns_status", "dns_provider"]
    search_fields = ["name", "subdomain", "domain", "=id"]
    list_select_related = ["parent"]
    ordering = ["-created_at"]
    readonly_fields = [f.name for f in Organization._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
