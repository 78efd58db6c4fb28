from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest

from organizations.validation import CONTROL_CHARACTERS_MESSAGE, has_control_characters

from .emails import canonical_email
from .models import ROLE_CHOICES
from .payloads import Role


class NewAccountForm(forms.Form):
    """Name and password of an invitee who has no account yet; the password meets Django's validators."""

    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    password1 = forms.CharField(
        label="Password", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    password2 = forms.CharField(
        label="Password again", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def __init__(self, *args, email: str, **kwargs):
        self.email = email
        super().__init__(*args, **kwargs)

    def clean_first_name(self) -> str:
        return _plain_name(self.cleaned_data["first_name"])

    def clean_last_name(self) -> str:
        return _plain_name(self.cleaned_data["last_name"])

    def clean(self):
        cleaned = super().clean()
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first and second and first != second:
            self.add_error("password2", "The two passwords differ.")
        elif first:
            # A user that is never saved, so the similarity validator can compare with name and email.
            probe = get_user_model()(
                username=self.email,
                email=self.email,
                first_name=cleaned.get("first_name", ""),
                last_name=cleaned.get("last_name", ""),
            )
            try:
                password_validation.validate_password(first, probe)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return cleaned


def _plain_name(name: str) -> str:
    if has_control_characters(name):
        raise forms.ValidationError(CONTROL_CHARACTERS_MESSAGE)
    return name


class InvitedAccountLoginForm(AuthenticationForm):
    """Tries the password of an account with the invited address only: any other username gets the answer a
    wrong password gets, untried, so the page tells no one whether a password fits some other account."""

    def __init__(self, request: HttpRequest, *args, email_canonical: str, **kwargs):
        self.email_canonical = email_canonical
        super().__init__(request, *args, **kwargs)

    def clean(self):
        username, password = self.cleaned_data.get("username"), self.cleaned_data.get("password")
        if username is not None and password and not self._invited(username):
            get_user_model()().set_password(password)  # as slow as a tried password, as ModelBackend does
            raise self.get_invalid_login_error()
        return super().clean()

    def _invited(self, username: str) -> bool:
        User = get_user_model()
        account = User._default_manager.filter(**{User.USERNAME_FIELD: username}).first()
        return account is not None and canonical_email(account.email or "") == self.email_canonical


class InviteUserForm(forms.Form):
    """One person to invite to an active organization (the invitations service checks the list as a whole)."""

    email = forms.EmailField(max_length=254)
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial=Role.CLINICIAN)


InviteUsersFormSet = forms.formset_factory(InviteUserForm, extra=3, min_num=1, validate_min=True)
