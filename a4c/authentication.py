"""HTTP Basic authentication for the REST API (the README's `curl -u`), with password guesses rate limited.

DRF checks throttles only after authentication, so its throttle classes never see a failed login: the API
would tell a right password from a wrong one for any account as fast as it is asked. Here a client whose
failed Basic logins have reached the limit is refused before its password is tried; logins that succeed are
not counted, so a script with the right credentials is never slowed down. Session requests (the admin's)
are not Basic logins at all.
"""

from drf_spectacular.authentication import BasicScheme
from rest_framework.authentication import BasicAuthentication
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from invitations.ratelimit import client_bucket


class FailedBasicLogins(SimpleRateThrottle):
    """REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["basic_auth"] failed logins per client address (IPv6: per
    /64), in a sliding window."""

    scope = "basic_auth"

    def get_rate(self) -> str | None:
        # Read when used, not when DRF's module was imported (SimpleRateThrottle.THROTTLE_RATES).
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": client_bucket(request)}

    def reached(self, request) -> bool:
        self.key, self.now = self.get_cache_key(request, None), self.timer()
        self.history = [at for at in self.cache.get(self.key, []) if at > self.now - self.duration]
        return len(self.history) >= self.num_requests

    def count(self) -> None:
        self.throttle_success()  # records self.now in the window's history


class RateLimitedBasicAuthentication(BasicAuthentication):
    def authenticate_credentials(self, userid, password, request=None):
        failures = FailedBasicLogins()
        if failures.reached(request):
            raise Throttled(failures.wait())
        try:
            return super().authenticate_credentials(userid, password, request)
        except AuthenticationFailed:
            failures.count()
            raise


class RateLimitedBasicScheme(BasicScheme):
    """In the OpenAPI schema, the plain HTTP Basic scheme it is."""

    target_class = RateLimitedBasicAuthentication
