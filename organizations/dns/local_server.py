"""A small authoritative DNS server for the local provider's records (`manage.py run_local_dns`).

Answers for DNS_BASE_DOMAIN only: a CNAME for each stored name, A 127.0.0.1 for DNS_TARGET and for any other
name under the base domain that a stored CNAME points at (so resolvers following the CNAME get an address),
NXDOMAIN for other names under the base domain, REFUSED outside it. The table is read on every query, so
records the worker writes are served at once.
"""

import logging
import socket
import socketserver
import threading
import time

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from django.db import close_old_connections, connections

from .base import normalize_name
from .models import LocalDnsRecord

log = logging.getLogger(__name__)

LOOPBACK_ADDRESS = "127.0.0.1"
MAX_CHAIN = 8  # CNAME hops followed inside the zone
TCP_IDLE_TIMEOUT = 10.0  # a silent TCP client must not hold the (single) TCP serving thread


class LocalZone:
    """Builds answers from the LocalDnsRecord table."""

    def __init__(self, base_domain: str, target: str) -> None:
        self.origin = dns.name.from_text(normalize_name(base_domain))
        self.target = dns.name.from_text(normalize_name(target))
        self.soa_ttl = 60
        self._soa = f"ns.{self.origin} hostmaster.{self.origin} 1 3600 600 86400 {self.soa_ttl}"

    def respond(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if query.opcode() != dns.opcode.QUERY:
            response.set_rcode(dns.rcode.NOTIMP)
            return response
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        question = query.question[0]
        if question.rdclass != dns.rdataclass.IN or not question.name.is_subdomain(self.origin):
            response.flags &= ~dns.flags.AA
            response.set_rcode(dns.rcode.REFUSED)
            return response
        try:
            self._answer(question.name, question.rdtype, response)
        except Exception:
            log.exception("Local DNS lookup of %s failed", question.name)
            response.answer.clear()
            response.authority.clear()
            response.set_rcode(dns.rcode.SERVFAIL)
        return response

    def _answer(self, qname: dns.name.Name, qtype: int, response: dns.message.Message) -> None:
        name = qname
        for _ in range(MAX_CHAIN):
            # The target's address needs no lookup: every verification ends there, so it saves one query of two.
            row = None if name == self.target else _record(_text(name))
            if row is not None:
                record_type, content, ttl = row
                if record_type != "CNAME":
                    if dns.rdatatype.from_text(record_type) in (qtype, dns.rdatatype.ANY):
                        response.answer.append(_rrset(name, ttl, record_type, content))
                    break
                cname = dns.name.from_text(normalize_name(content))
                response.answer.append(_rrset(name, ttl, "CNAME", cname.to_text()))
                if qtype in (dns.rdatatype.CNAME, dns.rdatatype.ANY) or not cname.is_subdomain(self.origin):
                    break  # outside our zone the resolver follows the CNAME itself
                name = cname
            elif name == self.origin:
                if qtype in (dns.rdatatype.SOA, dns.rdatatype.ANY):
                    response.answer.append(_rrset(name, self.soa_ttl, "SOA", self._soa))
                break
            elif self._serves_address(name):
                if qtype in (dns.rdatatype.A, dns.rdatatype.ANY):
                    response.answer.append(_rrset(name, self.soa_ttl, "A", LOOPBACK_ADDRESS))
                break
            else:
                if name == qname:
                    response.set_rcode(dns.rcode.NXDOMAIN)
                break
        if not response.answer or response.rcode() == dns.rcode.NXDOMAIN:
            response.authority.append(_rrset(self.origin, self.soa_ttl, "SOA", self._soa))

    def _serves_address(self, name: dns.name.Name) -> bool:
        return name == self.target or LocalDnsRecord.objects.filter(record_type="CNAME", content=_text(name)).exists()


def _record(name: str) -> tuple[str, str, int] | None:
    return LocalDnsRecord.objects.filter(name=name).values_list("record_type", "content", "ttl").first()


def _text(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()


def _rrset(name: dns.name.Name, ttl: int, rdtype: str, content: str) -> dns.rrset.RRset:
    if rdtype == "CNAME" and not content.endswith("."):
        content += "."
    return dns.rrset.from_text(name, ttl, "IN", rdtype, content)


def _wire(response: dns.message.Message, max_size: int) -> bytes:
    try:
        return response.to_wire(max_size=max_size)
    except dns.exception.TooBig:
        response.flags |= dns.flags.TC
        response.answer.clear()
        response.authority.clear()
        response.additional.clear()
        return response.to_wire(max_size=max_size)


class _UdpHandler(socketserver.BaseRequestHandler):
    server: "_UdpServer"

    def handle(self) -> None:
        data, sock = self.request
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return  # not DNS, or too broken to answer
        close_old_connections()
        response = self.server.zone.respond(query)
        max_size = max(512, query.payload) if query.edns >= 0 else 512
        sock.sendto(_wire(response, max_size), self.client_address)


class _TcpHandler(socketserver.BaseRequestHandler):
    server: "_TcpServer"

    def handle(self) -> None:
        sock: socket.socket = self.request
        while True:
            try:
                query, _ = dns.query.receive_tcp(sock, time.time() + TCP_IDLE_TIMEOUT)
            except (EOFError, OSError, dns.exception.DNSException):
                return
            close_old_connections()
            dns.query.send_tcp(sock, self.server.zone.respond(query), time.time() + TCP_IDLE_TIMEOUT)


class _UdpServer(socketserver.UDPServer):
    def __init__(self, address: tuple[str, int], zone: LocalZone) -> None:
        self.zone = zone
        super().__init__(address, _UdpHandler)


class _TcpServer(socketserver.TCPServer):
    allow_reuse_address = True  # restarts must not wait out TIME_WAIT

    def __init__(self, address: tuple[str, int], zone: LocalZone) -> None:
        self.zone = zone
        super().__init__(address, _TcpHandler)


class LocalDnsServer:
    """UDP and TCP on one address and port, each served by one background thread.

    Queries are handled one at a time per transport: enough for a quickstart, and one database connection
    per thread, closed when the server stops.
    """

    def __init__(self, address: str, port: int, *, base_domain: str, target: str) -> None:
        self.zone = LocalZone(base_domain, target)
        self.address = address
        self.port = port
        self._servers: list[socketserver.BaseServer] = []
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Bind both sockets (OSError if the port is taken) and start serving."""
        # With port 0 the system picks the UDP port and TCP takes the same number, which may be taken for
        # TCP: then pick again.
        for _ in range(20 if self.port == 0 else 1):
            udp = _UdpServer((self.address, self.port), self.zone)
            try:
                tcp = _TcpServer((self.address, udp.server_address[1]), self.zone)
            except OSError:
                udp.server_close()
                if self.port:
                    raise
                continue
            break
        else:
            raise OSError(f"No free port for both UDP and TCP on {self.address}")
        self.port = udp.server_address[1]
        self._servers = [udp, tcp]
        for server in self._servers:
            thread = threading.Thread(target=self._serve, args=(server,), name=f"local-dns-{type(server).__name__}")
            thread.daemon = True
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
        for thread in self._threads:
            thread.join(timeout=TCP_IDLE_TIMEOUT + 5)
        for server in self._servers:
            server.server_close()
        self._servers, self._threads = [], []

    @staticmethod
    def _serve(server: socketserver.BaseServer) -> None:
        try:
            server.serve_forever(poll_interval=0.2)
        finally:
            connections.close_all()  # this thread's connection; test databases cannot be dropped with it open
