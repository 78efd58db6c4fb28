"""HTTP Basic authentication for the REST API (the README's `curl -u`), with password guesses rate limited.

DRF checks throttles only after authentication, so its throttle classes never see a failed login: the API
would tell a right password from a wrong one for any account as fast as it is asked. Here a client whose
failed Basic logins have reached the limit is refused before its password is tried; logins that succeed are
not counted, so a script with the right credentials is never slowed down. Session requests (the admin's)
are not Basic logins at all.
"""

from drf_spectacular.authentication import BasicScheme
from rest_framework.authentication import BasicAuthentication
from rest_framework.exceptions import Throttled
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from invitations.ratelimit import count_attempt, uncount_attempt

SCOPE = "api:basic-login-failures"


def _limit() -> tuple[int, float]:
    # The DRF rate format ("20/min"), read when used so settings can change it.
    limit, window = SimpleRateThrottle.parse_rate(None, api_settings.DEFAULT_THROTTLE_RATES["basic_auth"])
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


class RateLimitedBasicScheme(BasicScheme):
    """In the OpenAPI schema, the plain HTTP Basic scheme it is."""

    target_class = RateLimitedBasicAuthentication
