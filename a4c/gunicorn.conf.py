"""gunicorn settings for production: `gunicorn -c a4c/gunicorn.conf.py a4c.wsgi`."""

import os

from gunicorn.glogging import Logger

from a4c.capacity import available_cpus
from invitations.logging import redact

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# From the CPUs a container grants (affinity, cgroup quota), not the host's: each worker holds DB connections.
workers = int(os.environ.get("GUNICORN_WORKERS") or 2 * available_cpus() + 1)
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", 4))
keepalive = 30
accesslog = "-"
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn's control socket defaults to one path per user ($XDG_RUNTIME_DIR or ~/.gunicorn/gunicorn.ctl), which a
# second instance of the same user takes over and the first then deletes: off unless a path is given.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not control_socket


class RedactingLogger(Logger):
    """The access log names each request's path and referrer; on an invitation link those hold its token."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "f"):  # request line, path, Referer
            if isinstance(atoms.get(key), str):
                atoms[key] = redact(atoms[key])
        return atoms


logger_class = RedactingLogger
