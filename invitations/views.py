"""Acceptance pages: thin views over `invitations.selectors` and `invitations.services`.

The link's token is checked once, on the GET that carries it; the browser then keeps only the selector of a
token whose verifier matched, in a signed cookie of its own (`invitations.cookie`), and is redirected to a
URL without the token. GETs change no invitation (mail scanners follow links); POSTs act, on a fresh read.
"""

import functools
import secrets

from django.conf import settings
from django.contrib.auth import login, logout
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_http_methods

from . import acceptance, cookie
from .emails import canonical_email
from .exceptions import AccountExists, AccountMismatch, InvitationUnavailable
from .forms import InvitedAccountLoginForm, NewAccountForm
from .landing import landing_cache
from .ratelimit import attempt_allowed
from .selectors import InvitationPage, TokenState, invitation_page, token_check

# Stands for the CSRF token in rendered pages kept by the micro-cache; each response gets its own token.
CSRF_PLACEHOLDER = f"csrf{secrets.token_hex(16)}"
_CSRF_PLACEHOLDER_BYTES = CSRF_PLACEHOLDER.encode()


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


def _stale(request: HttpRequest) -> HttpResponse:
    context = {
        "title": "This page is out of date",
        "message": "Another invitation link was opened in this browser since this page was shown. Open the link "
        "in the email of the invitation you mean, and try again.",
    }
    return render(request, "invitations/problem.html", context, status=409)


# The URL with the token: no Referer at all from it.
@private("no-referrer")
@require_GET
def accept_token(request: HttpRequest, token: str) -> HttpResponse:
    if not attempt_allowed(request):
        return _too_many(request)
    check = token_check(token)
    response = redirect("invitations:accept")
    if check.invitation is not None:
        cookie.remember(response, check.selector)
        landing_cache.forget(check.selector)  # the page shows what was just checked
    else:
        cookie.forget(response)
    return response


def _mode(request: HttpRequest, page: InvitationPage) -> str:
    """new: no account yet; confirm: logged in as the invited account; login: the invited address has an
    account, not logged in; switch: logged in as someone else."""
    # Users are logged in through the session only: without its cookie there is no one to look up.
    if settings.SESSION_COOKIE_NAME in request.COOKIES and (user := request.user).is_authenticated:
        return "confirm" if canonical_email(user.email or "") == page.email_canonical else "switch"
    return "login" if page.account_exists else "new"


def _landing_html(
    request: HttpRequest, page: InvitationPage, mode: str, *, form=None, login_form=None, error: str = ""
) -> bytes:
    """The landing page with CSRF_PLACEHOLDER for the token: "new" and "login" pages without a submitted form
    depend on the invitation alone, so the micro-cache keeps them."""
    if form is None and mode == "new":
        form = NewAccountForm(email=page.email, initial={"first_name": page.first_name, "last_name": page.last_name})
    if login_form is None and mode == "login":
        login_form = AuthenticationForm(request, initial={"username": page.email_canonical})
    context = {
        "invitation": page,
        "mode": mode,
        "form": form,
        "login_form": login_form,
        "error": error,
        "user": request.user,
        "csrf_token": CSRF_PLACEHOLDER,
    }
    return render_to_string("invitations/landing.html", context).encode()


def _landing(
    request: HttpRequest, page: InvitationPage, *, form=None, login_form=None, error: str = "", status: int = 200
) -> HttpResponse:
    mode = _mode(request, page)
    reusable = mode in ("new", "login") and form is None and login_form is None and not error
    html = landing_cache.html(page, mode) if reusable else None
    if html is None:
        html = _landing_html(request, page, mode, form=form, login_form=login_form, error=error)
        if reusable:
            landing_cache.keep_html(page, mode, html)
    return HttpResponse(html.replace(_CSRF_PLACEHOLDER_BYTES, get_token(request).encode()), status=status)


def _done(request: HttpRequest, context: dict) -> HttpResponse:
    response = render(request, "invitations/done.html", context)
    cookie.forget(response)
    return response


# Tokenless pages: same-origin, because under no-referrer browsers send "Origin: null" with the form's POST,
# which Django's CSRF origin check rightly refuses; no Referer still leaves for another site.
@private("same-origin")
@require_http_methods(["GET", "POST"])
def accept(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _act(request)
    selector = cookie.remembered(request)
    page = landing_cache.page(selector) if selector else None
    if page is None:
        return _problem(request, TokenState.UNKNOWN)
    if (state := page.state) != TokenState.VALID:
        return _problem(request, state)
    return _landing(request, page)


def _act(request: HttpRequest) -> HttpResponse:
    """A POST decides on the database as it is now, never on the micro-cache."""
    if not attempt_allowed(request):
        return _too_many(request)
    selector = cookie.remembered(request)
    page = invitation_page(selector)
    if page is None:
        return _problem(request, TokenState.UNKNOWN)
    if page.state != TokenState.VALID:
        return _problem(request, page.state)
    if request.POST.get("invitation") != page.invitation_id:
        # A page left open from an earlier link: the cookie now names the invitation opened since.
        return _stale(request)

    action = request.POST.get("action")
    if action == "decline":
        try:
            acceptance.invitation_decline(selector=selector)
        except InvitationUnavailable as exc:
            return _problem(request, exc.state)
        finally:
            landing_cache.forget(selector)
        return _done(request, {"declined": True, "organization": page.organization_name})
    if action == "logout":
        logout(request)  # the invitation cookie is not the session's: it stays
        return redirect("invitations:accept")
    if action == "login":
        form = InvitedAccountLoginForm(request, data=request.POST, email_canonical=page.email_canonical)
        if not form.is_valid():
            return _landing(request, page, login_form=form, status=400)
        login(request, form.get_user())
        return redirect("invitations:accept")
    if action != "accept":
        return _landing(request, page, error="Choose accept or decline.", status=400)

    mode = _mode(request, page)
    try:
        if mode == "confirm":
            accepted = acceptance.invitation_accept(selector=selector, user=request.user)
        elif mode == "new":
            form = NewAccountForm(request.POST, email=page.email)
            if not form.is_valid():
                return _landing(request, page, form=form, status=400)
            accepted = acceptance.invitation_accept(
                selector=selector,
                first_name=form.cleaned_data["first_name"],
                last_name=form.cleaned_data["last_name"],
                password=form.cleaned_data["password1"],
            )
            login(request, accepted.user, backend=settings.AUTHENTICATION_BACKENDS[0])
        else:
            return _landing(request, page, error="Log in as the invited account to accept.", status=403)
    except InvitationUnavailable as exc:
        return _problem(request, exc.state)
    except (AccountExists, AccountMismatch) as exc:
        return _landing(request, page, error=str(exc), status=409)
    finally:
        landing_cache.forget(selector)
    context = {"accepted": True, "organization": page.organization_name, "role": page.role_display}
    return _done(request, {**context, "welcome_url": _welcome_url(accepted.invitation.organization)})


def _welcome_url(organization) -> str:
    """Where the welcome page leads the new member on (INVITATION_WELCOME_URL, filled in for the organization)."""
    # Plain replacement, not str.format: any other brace in a configured URL stays as written instead of failing.
    url = settings.INVITATION_WELCOME_URL.replace("{domain}", organization.domain)
    return url.replace("{subdomain}", organization.subdomain)
