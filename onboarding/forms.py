from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.html import format_html

from invitations.validation import invitees_validate
from organizations.validation import check_subdomain_available, validate_name, validate_subdomain

from .models import OnboardingRequest


class OnboardingRequestForm(forms.ModelForm):
    class Meta:
        model = OnboardingRequest
        fields = ["name", "type", "subdomain", "parent"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "subdomain" in self.fields:
            # The admin renders help text as HTML: the placeholder is escaped, the base domain read per request.
            self.fields["subdomain"].help_text = format_html(
                "3 to 63 lowercase letters, digits and hyphens; the organization's address becomes "
                "&lt;subdomain&gt;.{}",
                settings.DNS_BASE_DOMAIN,
            )

    def clean_name(self):
        return validate_name(self.cleaned_data["name"])

    def clean_subdomain(self):
        subdomain = validate_subdomain(self.cleaned_data["subdomain"])
        check_subdomain_available(subdomain)
        return subdomain


class InviteeFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        if any(self.errors):
            return
        rows = [
            form.cleaned_data for form in self.forms if form.cleaned_data and not form.cleaned_data.get("DELETE", False)
        ]
        try:
            invitees_validate(rows, max_count=settings.BOOTSTRAP_MAX_INVITEES, require_admin=True, per="bootstrap")
        except ValidationError as exc:
            # Point each problem at the row it is about; list-wide ones go above the inline.
            live = [f for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE", False)]
            for key, messages in exc.message_dict.items():
                parts = key.split(".")
                if len(parts) == 3:
                    live[int(parts[1])].add_error(parts[2], messages)
                else:
                    raise ValidationError(messages) from None
