"""A real SMTP server for tests (aiosmtpd, in this process) and what tests read from the emails it receives."""

import asyncio
import email
import email.policy
import re
import threading
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller

LINK = re.compile(r"https?://[^\s\"<>]+/invitations/accept/([A-Za-z0-9_.\-]+)/")


@dataclass
class SmtpSink:
    """Collects every message; can answer 451 to the next N messages, or be stopped and started again."""

    port: int
    messages: list = field(default_factory=list)
    fail_next: int = 0
    refuse_sender_next: int = 0  # answer the next N senders (MAIL FROM) 550, as a relay over its quota does
    reply_delay: float = 0.0  # seconds a message waits for its answer after it is taken, as a scanning relay's does
    refused: int = 0
    _controller: Controller | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        with self._lock:
            if self.refuse_sender_next > 0:
                self.refuse_sender_next -= 1
                self.refused += 1
                return "550 5.4.5 Daily user sending quota exceeded"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                self.refused += 1
                return "451 4.3.0 Mailbox busy, try again later"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._arrived:
            self.messages.append((envelope.rcpt_tos, message))
            self._arrived.notify_all()
        await asyncio.sleep(self.reply_delay)
        return "250 OK"

    def start(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def wait_for(self, count: int, timeout: float = 60.0) -> list:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.messages) >= count, timeout=timeout)
            return list(self.messages)

    def to(self, address: str) -> list:
        return [m for rcpt, m in self.messages if address in rcpt]

    @staticmethod
    def text(message) -> str:
        return message.get_body(preferencelist=("plain",)).get_content()

    @staticmethod
    def html(message) -> str:
        return message.get_body(preferencelist=("html",)).get_content()

    def token_for(self, address: str, index: int = -1) -> str:
        messages = self.to(address)
        assert messages, f"no email reached {address}"
        match = LINK.search(self.text(messages[index]))
        assert match, "the email carries no invitation link"
        return match.group(1)
