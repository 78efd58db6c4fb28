"""Settings for bench/invitations.py's web phase: the product's, with a bare view added to the URLs."""

from a4c.settings import *  # noqa: F403

ROOT_URLCONF = "bench.invitations_urls"
