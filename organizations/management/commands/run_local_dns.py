import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from organizations.dns.local_server import LocalDnsServer

log = logging.getLogger("organizations.dns")


class Command(BaseCommand):
    help = (
        "Serve the local DNS provider's records over DNS (UDP and TCP) until SIGTERM or SIGINT. "
        "Answers for DNS_BASE_DOMAIN only."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, help="Port for UDP and TCP (default: LOCAL_DNS_PORT).")
        parser.add_argument("--address", default="127.0.0.1", help="Address to listen on (default: 127.0.0.1).")

    def handle(self, *args, port, address, **options):
        port = settings.LOCAL_DNS_PORT if port is None else port
        if not 0 < port < 65536:
            raise CommandError(f"--port must be between 1 and 65535, not {port}.")
        server = LocalDnsServer(address, port, base_domain=settings.DNS_BASE_DOMAIN, target=settings.DNS_TARGET)
        try:
            server.start()
        except OSError as exc:
            raise CommandError(
                f"Cannot listen on {address}:{port} ({exc.strerror or exc}); is another DNS server using the "
                "port? Choose another with --port or LOCAL_DNS_PORT (and DNS_VERIFY_RESOLVERS to match)."
            ) from None

        stop = threading.Event()

        def on_signal(signum, frame):
            log.info("%s received: stopping the local DNS server", signal.Signals(signum).name)
            stop.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, on_signal)
        self.stdout.write(
            f"Local DNS serving {settings.DNS_BASE_DOMAIN} on {address}:{server.port} (UDP and TCP); "
            f"{settings.DNS_TARGET} answers 127.0.0.1 (Ctrl-C to stop)"
        )
        stop.wait()
        server.stop()
        self.stdout.write("Local DNS stopped")
