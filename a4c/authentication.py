"""Logins with password guesses rate limited: HTTP Basic for the REST API (the README's `curl -u`) and the admin's
login page.

DRF checks throttles only after authentication, so its throttle classes never see a failed login: the API
would tell a right password from a wrong one for any account as fast as it is asked. Here a client whose
failed logins have reached the limit is refused before its password is tried; logins that succeed are not
counted, so a script with the right credentials is never slowed down.
"""

from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from drf_spectacular.authentication import BasicScheme
from rest_framework.authentication import BasicAuthentication
from rest_framework.exceptions import Throttled
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from invitations.ratelimit import count_attempt, uncount_attempt

SCOPE = "api:basic-login-failures"
ADMIN_SCOPE = "admin:login-failures"


def _limit() -> tuple[int, float]:
    # The DRF rate format ("20/min"), read when used so settings can change it.
    limit, window = SimpleRateThrottle.parse_rate(None, api_settings.DEFAULT_THROTTLE_RATES["failed_logins"])
    return limit, float(window)


class RateLimitedBasicAuthentication(BasicAuthentication):
    def authenticate_credentials(self, userid, password, request=None):
        # The attempt is counted before the password is tried (atomically, so parallel guesses cannot all slip
        # under the limit) and given back when the login succeeds: only failures use up the allowance.
        limit, window = _limit()
        if not count_attempt(request, scope=SCOPE, limit=limit, window=window):
            raise Throttled(window)
        user = super().authenticate_credentials(userid, password, request)
        uncount_attempt(request, scope=SCOPE)
        return user


class RateLimitedAdminLoginForm(AdminAuthenticationForm):
    """The admin's login form (admin.site.login_form), under the same limit: it takes the passwords of the
    staff accounts, the ones most worth guessing."""

    def clean(self):
        limit, window = _limit()
        if not count_attempt(self.request, scope=ADMIN_SCOPE, limit=limit, window=window):
            raise ValidationError(
                "Too many failed logins from your address. Wait a minute and try again.", code="throttled"
            )
        cleaned = super().clean()  # raises for a wrong password: the attempt stays counted
        uncount_attempt(self.request, scope=ADMIN_SCOPE)
        return cleaned


class RateLimitedBasicScheme(BasicScheme):
    """In the OpenAPI schema, the plain HTTP Basic scheme it is."""

    target_class = RateLimitedBasicAuthentication
