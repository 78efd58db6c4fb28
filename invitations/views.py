"""Acceptance pages: thin views over `invitations.selectors` and `invitations.services`.

The link's token is checked once, on the GET that carries it; the session then keeps only the selector
of a token whose verifier matched (so the plaintext token never reaches the database) and the browser is
redirected to a URL without it. GETs change no invitation (mail scanners follow links); POSTs act.
"""

import functools

from django.conf import settings
from django.contrib.auth import login, logout
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from . import services
from .emails import canonical_email
from .forms import NewAccountForm
from .ratelimit import attempt_allowed
from .selectors import TokenCheck, TokenState, selector_check, token_check, user_for_email

SESSION_KEY = "invitation"

PROBLEMS: dict[str, tuple[int, str, str]] = {
    TokenState.UNKNOWN: (
        404,
        "Invitation not found",
        "This invitation link is not valid. Check that you opened the whole link.",
    ),
    TokenState.EXPIRED: (
        410,
        "Invitation expired",
        "This invitation has expired. Ask your organization to invite you again.",
    ),
    TokenState.REVOKED: (410, "Invitation withdrawn", "This invitation was withdrawn by the organization."),
    TokenState.SUPERSEDED: (
        410,
        "A newer invitation was sent to you",
        "A newer invitation was sent to you: use the link in the most recent email.",
    ),
    TokenState.ACCEPTED: (410, "Invitation already used", "This invitation has already been accepted."),
    TokenState.DECLINED: (410, "Invitation declined", "This invitation was declined."),
}


def private(policy: str):
    """Nothing here is cached, and a Referer never carries these URLs elsewhere."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            response = view(request, *args, **kwargs)
            response["Referrer-Policy"] = policy
            response["Cache-Control"] = "no-store"
            return response

        return wrapped

    return decorator


def _problem(request: HttpRequest, state: str) -> HttpResponse:
    status, title, message = PROBLEMS[state]
    return render(
        request, "invitations/problem.html", {"title": title, "message": message, "state": state}, status=status
    )


def _too_many(request: HttpRequest) -> HttpResponse:
    context = {
        "title": "Too many attempts",
        "message": "Too many attempts from your address. Wait a minute and try again.",
    }
    return render(request, "invitations/problem.html", context, status=429)


# The URL with the token: no Referer at all from it.
@private("no-referrer")
@require_GET
def accept_token(request: HttpRequest, token: str) -> HttpResponse:
    if not attempt_allowed(request):
        return _too_many(request)
    check = token_check(token)
    request.session[SESSION_KEY] = {"selector": check.selector} if check.invitation else {"unknown": True}
    return redirect("invitations:accept")


def _mode(request: HttpRequest, check: TokenCheck) -> str:
    """new: no account yet; confirm: logged in as the invited account; login: the invited address has an
    account, not logged in; switch: logged in as someone else."""
    user = request.user
    if user.is_authenticated:
        return "confirm" if canonical_email(user.email or "") == check.invitation.email_canonical else "switch"
    return "login" if user_for_email(check.invitation.email) is not None else "new"


def _landing(
    request: HttpRequest, check: TokenCheck, *, form=None, login_form=None, error: str = "", status: int = 200
):
    invitation = check.invitation
    inviter = invitation.invited_by
    mode = _mode(request, check)
    context = {
        "invitation": invitation,
        "organization": invitation.organization,
        "inviter": (inviter.get_full_name() or inviter.get_username()) if inviter else "The A4C onboarding team",
        "role": invitation.get_role_display(),
        "expires_at": invitation.expires_at,
        "mode": mode,
        "form": form
        or (
            NewAccountForm(
                email=invitation.email, initial={"first_name": invitation.first_name, "last_name": invitation.last_name}
            )
            if mode == "new"
            else None
        ),
        "login_form": login_form
        or (AuthenticationForm(request, initial={"username": invitation.email_canonical}) if mode == "login" else None),
        "error": error,
    }
    return render(request, "invitations/landing.html", context, status=status)


def _keep_invitation(request: HttpRequest, change) -> None:
    """Log in or out without losing the invitation: Django flushes the session when the user changes."""
    kept = request.session.get(SESSION_KEY)
    change()
    if kept is not None:
        request.session[SESSION_KEY] = kept


# Tokenless pages: same-origin, because under no-referrer browsers send "Origin: null" with the form's POST,
# which Django's CSRF origin check rightly refuses; no Referer still leaves for another site.
@private("same-origin")
@require_http_methods(["GET", "POST"])
def accept(request: HttpRequest) -> HttpResponse:
    if request.method == "POST" and not attempt_allowed(request):
        return _too_many(request)
    stored = request.session.get(SESSION_KEY) or {}
    check = selector_check(stored.get("selector", ""))
    if not check.valid:
        return _problem(request, check.state)
    if request.method == "GET":
        return _landing(request, check)

    action = request.POST.get("action")
    invitation = check.invitation
    if action == "decline":
        try:
            services.invitation_decline(selector=check.selector)
        except services.InvitationUnavailable as exc:
            return _problem(request, exc.state)
        request.session.pop(SESSION_KEY, None)
        return render(request, "invitations/done.html", {"declined": True, "organization": invitation.organization})
    if action == "logout":
        _keep_invitation(request, lambda: logout(request))
        return redirect("invitations:accept")
    if action == "login":
        form = AuthenticationForm(request, data=request.POST)
        if not form.is_valid():
            return _landing(request, check, login_form=form, status=400)
        account = form.get_user()
        if canonical_email(account.email or "") != invitation.email_canonical:
            return _landing(request, check, error="That account's email address is not the invited one.", status=403)
        _keep_invitation(request, lambda: login(request, account))
        return redirect("invitations:accept")
    if action != "accept":
        return _landing(request, check, error="Choose accept or decline.", status=400)

    mode = _mode(request, check)
    try:
        if mode == "confirm":
            acceptance = services.invitation_accept(selector=check.selector, user=request.user)
        elif mode == "new":
            form = NewAccountForm(request.POST, email=invitation.email)
            if not form.is_valid():
                return _landing(request, check, form=form, status=400)
            acceptance = services.invitation_accept(
                selector=check.selector,
                first_name=form.cleaned_data["first_name"],
                last_name=form.cleaned_data["last_name"],
                password=form.cleaned_data["password1"],
            )
            _keep_invitation(
                request, lambda: login(request, acceptance.user, backend=settings.AUTHENTICATION_BACKENDS[0])
            )
        else:
            return _landing(request, check, error="Log in as the invited account to accept.", status=403)
    except services.InvitationUnavailable as exc:
        return _problem(request, exc.state)
    except (services.AccountExists, services.AccountMismatch) as exc:
        return _landing(request, check, error=str(exc), status=409)
    request.session.pop(SESSION_KEY, None)
    context = {"accepted": True, "organization": invitation.organization, "role": invitation.get_role_display()}
    return render(request, "invitations/done.html", context)
