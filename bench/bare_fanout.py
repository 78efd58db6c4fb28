"""The bare fan-out's Celery app for bench/invitations.py: one task per email that sends a message over SMTP and
signals the bare workflow (bench/bare_fanout_workflow.py). No Django, no database, no rendering.

Run as its own worker, `python -m celery -A bench.bare_fanout worker`, on the product's broker (CELERY_BROKER_URL)
with the product's task options (late acks, prefetch 4, no results). Like the product's email task it keeps one
SMTP connection per worker process, and like the product's Temporal client facade one Temporal client per process
on an event loop thread of its own. The script passes the message size it measured on the product's emails.
"""

import asyncio
import functools
import os
import smtplib
import threading

from celery import Celery

BARE_CELERY_QUEUE = "bench_bare_fanout"
# bench/bare_fanout_workflow.py's signal; importing that module here would pull in the worker's registry (Django).
BARE_SIGNAL = "bench_bare_delivery"
SENDER = "no-reply@localhost"

app = Celery("bench_bare_fanout", broker=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_default_queue=BARE_CELERY_QUEUE,
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=4,
    broker_connection_retry_on_startup=True,
    broker_transport_options={"visibility_timeout": 3600},
)


class _PerProcess(threading.local):
    """This process's SMTP connection, Temporal client and its loop (created after the pool's fork)."""

    pid: int = 0
    smtp: smtplib.SMTP | None = None
    loop: asyncio.AbstractEventLoop | None = None
    client = None


_here = _PerProcess()


def _fresh() -> None:
    if _here.pid != os.getpid():
        _here.pid, _here.smtp, _here.client = os.getpid(), None, None
        _here.loop = asyncio.new_event_loop()
        threading.Thread(target=_here.loop.run_forever, name="temporal-client", daemon=True).start()


@functools.cache
def message(size: int) -> str:
    """A message of `size` bytes as the sink receives it (CRLF lines, as smtplib sends them)."""
    head = f"From: {SENDER}\r\nTo: invitee@example.org\r\nSubject: You're invited to join Bench Health on A4C\r\n\r\n"
    body_size = max(size - len(head) - 2, 0)
    line = "x" * 76 + "\r\n"
    body = (line * (body_size // len(line) + 1))[:body_size]
    return head + body


def _send(recipient: str, size: int) -> None:
    text = message(size)
    if _here.smtp is None:
        host, _, port = os.environ["BENCH_SMTP"].partition(":")
        _here.smtp = smtplib.SMTP(host, int(port), timeout=10)
    try:
        _here.smtp.sendmail(SENDER, [recipient], text)
    except smtplib.SMTPException:
        _here.smtp = None  # the next email connects afresh; this one fails the task
        raise


async def _signal(workflow_id: str, report: dict) -> None:
    if _here.client is None:
        from temporalio.client import Client

        _here.client = await Client.connect(os.environ["TEMPORAL_ADDRESS"])
    await _here.client.get_workflow_handle(workflow_id).signal(BARE_SIGNAL, report)


@app.task(name="bench.bare_send_email")
def send_email(index: int, workflow_id: str, size: int) -> None:
    _fresh()
    _send(f"person{index:05d}@example.org", size)
    report = {
        "invitation_id": f"bare-{index:05d}",
        "status": "sent",
        "attempts": 1,
        "error": "",
        "bootstrap_attempt": 0,
    }
    asyncio.run_coroutine_threadsafe(_signal(workflow_id, report), _here.loop).result(30)
