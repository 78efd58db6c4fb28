"""A real PowerDNS authoritative server (Debian's pdns-server + pdns-backend-sqlite3) for tests.

It listens on loopback only, on free ports, with its SQLite database, sockets and configuration in a temporary
directory, so it neither needs nor touches the system's PowerDNS.
"""

import secrets
import shutil
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

# The Debian package's schema; /usr/share/doc is often stripped from container images, so it comes second.
SCHEMA_FILES = (
    Path("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql"),
    Path("/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql"),
)
# Loopback addresses the DNS side listens on, so verification tests can count distinct resolvers.
DNS_ADDRESSES = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
SERVER_ID = "localhost"
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class PowerDns:
    api_url: str
    api_key: str
    dns_port: int
    dns_addresses: tuple[str, ...]
    server_id: str = SERVER_ID

    @property
    def resolvers(self) -> list[str]:
        """The server as `ip:port` resolver entries, one per listening address."""
        return [f"{address}:{self.dns_port}" for address in self.dns_addresses]

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, headers={"X-API-Key": self.api_key}, timeout=10)

    def create_zone(self, zone: str) -> None:
        """Create a native zone (SOA and NS made by PowerDNS); an existing zone is left as it is."""
        with self.api() as api:
            response = api.post(
                f"/api/v1/servers/{self.server_id}/zones",
                json={"name": zone.rstrip(".") + ".", "kind": "Native", "nameservers": [f"ns1.{zone.rstrip('.')}."]},
            )
            if response.status_code != 409:
                response.raise_for_status()

    def set_rrset(self, zone: str, name: str, rtype: str, contents: list[str], ttl: int = 60) -> None:
        """Write an rrset directly through the API (test setup that is not the provider under test)."""
        rrset = {
            "name": name.rstrip(".") + ".",
            "type": rtype,
            "ttl": ttl,
            "changetype": "REPLACE",
            "records": [{"content": content, "disabled": False} for content in contents],
        }
        with self.api() as api:
            api.patch(
                f"/api/v1/servers/{self.server_id}/zones/{zone.rstrip('.')}.", json={"rrsets": [rrset]}
            ).raise_for_status()

    def rrsets(self, zone: str, name: str) -> list[dict]:
        with self.api() as api:
            response = api.get(f"/api/v1/servers/{self.server_id}/zones/{zone.rstrip('.')}.")
            response.raise_for_status()
        return [r for r in response.json()["rrsets"] if r["name"] == name.rstrip(".") + "."]


def free_port() -> int:
    """A port free for both UDP and TCP on every DNS address right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((DNS_ADDRESSES[0], 0))
            port = udp.getsockname()[1]
            try:
                for address in DNS_ADDRESSES:
                    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                        if address == DNS_ADDRESSES[0] and kind == socket.SOCK_DGRAM:
                            continue
                        with socket.socket(socket.AF_INET, kind) as probe:
                            probe.bind((address, port))
            except OSError:
                continue
            return port
    raise RuntimeError("No free loopback port for PowerDNS")


def _schema() -> str:
    for path in SCHEMA_FILES:
        if path.is_file():
            return path.read_text()
    raise RuntimeError(
        "PowerDNS's SQLite schema is missing: install the Debian packages pdns-server and pdns-backend-sqlite3 "
        "(.ci/run does)."
    )


@contextmanager
def running_powerdns(workdir: Path) -> Iterator[PowerDns]:
    """Start pdns_server on loopback with a fresh SQLite backend in `workdir`; stop it on exit."""
    binary = shutil.which("pdns_server") or next(
        (p for p in ("/usr/sbin/pdns_server", "/usr/local/sbin/pdns_server") if Path(p).exists()), None
    )
    if binary is None:
        raise RuntimeError("pdns_server is missing: install the Debian package pdns-server (.ci/run does).")
    workdir.mkdir(parents=True, exist_ok=True)
    database = workdir / "pdns.sqlite3"
    with sqlite3.connect(database) as db:
        db.executescript(_schema())
    db.close()
    dns_port, api_port = free_port(), free_port()
    api_key = secrets.token_urlsafe(24)
    settings = {
        "launch": "gsqlite3",
        "gsqlite3-database": str(database),
        "local-address": ",".join(DNS_ADDRESSES),
        "local-port": str(dns_port),
        "webserver": "yes",
        "webserver-address": "127.0.0.1",
        "webserver-port": str(api_port),
        "webserver-allow-from": "127.0.0.0/8",
        "api": "yes",
        "api-key": api_key,
        "daemon": "no",
        "guardian": "no",
        "socket-dir": str(workdir),
        "disable-syslog": "yes",
        "log-timestamp": "no",
        "loglevel": "4",
        "security-poll-suffix": "",  # no status lookups on the internet
        # No caches: a deleted record must stop resolving at once.
        "cache-ttl": "0",
        "negquery-cache-ttl": "0",
        "query-cache-ttl": "0",
        "zone-cache-refresh-interval": "0",
    }
    # An empty config dir, so the system's /etc/powerdns/pdns.conf (and its launch= lines) is not read.
    (workdir / "pdns.conf").write_text("")
    command = [binary, f"--config-dir={workdir}", *(f"--{key}={value}" for key, value in settings.items())]
    log_path = workdir / "pdns.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = PowerDns(
        api_url=f"http://127.0.0.1:{api_port}", api_key=api_key, dns_port=dns_port, dns_addresses=DNS_ADDRESSES
    )
    try:
        _wait_until_ready(server, process, log_path)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def _wait_until_ready(server: PowerDns, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with server.api() as api:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"pdns_server exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
            with suppress(httpx.TransportError):
                if api.get(f"/api/v1/servers/{server.server_id}").status_code == 200:
                    return
            time.sleep(0.1)
    raise RuntimeError(f"pdns_server did not answer within {START_TIMEOUT:g} s:\n{log_path.read_text()[-4000:]}")
