"""Tokens stay secret (database, events, Temporal histories, Celery messages, logs) and the invitation
projections can be rebuilt from the events alone."""

import logging

import pytest
from celery.signals import before_task_publish
from django.apps import apps
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from eventstore.events import EventMetadata
from eventstore.services import projections_rebuild
from invitations import services
from invitations.models import Invitation, InvitationDelivery, InvitationToken, Membership
from invitations.payloads import Invitee, invitation_workflow_id
from temporal_bridge.client import temporal

from .helpers import accept_new, act, fan_out, open_link, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        # aiosmtpd's own log is the receiving mail server's (it logs the message, link included): not ours.
        if not record.name.startswith("mail.log"):
            self.lines.append(self.format(record))


def full_flow(organization, smtp) -> tuple[list[str], list[str]]:
    """Invite three, resend to one, accept one (new account), open a superseded link, decline one, revoke
    one. Returns the invitation ids and every token that was emailed."""
    result = fan_out(
        organization,
        [
            Invitee(email="a@example.org", first_name="Ann"),
            Invitee(email="b@example.org"),
            Invitee(email="c@example.org"),
        ],
    )
    a, b, c = result.invitation_ids
    first_a = smtp.token_for("a@example.org")
    delivery = services.invitation_resend(invitation_id=a)
    smtp.wait_for(4)
    wait_until(lambda: InvitationDelivery.objects.get(pk=delivery.pk).status == "sent")
    second_a = smtp.token_for("a@example.org")
    assert open_link(Client(), first_a).status_code == 410
    browser = Client()
    assert open_link(browser, second_a).status_code == 200
    assert accept_new(browser, first_name="Ann").status_code == 200
    declining = Client()
    open_link(declining, smtp.token_for("b@example.org"))
    assert act(declining, "decline").status_code == 200
    services.invitation_revoke(invitation_id=c, reason="test")
    return result.invitation_ids, [first_a, second_a, smtp.token_for("b@example.org"), smtp.token_for("c@example.org")]


def histories(workflow_ids: list[str]) -> str:
    async def fetch(client):
        return [(await client.get_workflow_handle(w).fetch_history()).to_json() for w in workflow_ids]

    return "\n".join(temporal.run(fetch, timeout=60))


def test_no_token_appears_in_the_database_events_temporal_celery_or_logs(
    organization, users_worker, celery_worker, smtp
):
    handler = Collect()
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    loggers = [logging.getLogger(n) for n in ("", "django.request", "django.server", "celery", "temporalio")]
    levels = [lg.level for lg in loggers]
    published: list[str] = []

    def capture(body=None, headers=None, **kwargs):
        published.append(repr((headers, body)))

    before_task_publish.connect(capture, weak=False)
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    try:
        invitation_ids, tokens = full_flow(organization, smtp)
    finally:
        before_task_publish.disconnect(capture)
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)

    assert len(set(tokens)) == 4 and published and handler.lines
    secrets = [t.split(".")[1] for t in tokens]  # the verifiers; the whole tokens contain them
    rows = []
    for model in apps.get_models():
        rows += [repr(row) for row in model._default_manager.values_list()]
    rows += [repr(s.get_decoded()) for s in Session.objects.all()]
    database = "\n".join(rows)
    logs = "\n".join(handler.lines)
    temporal_histories = histories([invitation_workflow_id(i) for i in invitation_ids])
    for secret in secrets:
        assert secret not in database
        assert secret not in logs
        assert secret not in temporal_histories
        assert secret not in "\n".join(published)
    assert all(len(t.verifier_hash) == 64 for t in InvitationToken.objects.all())


def test_rebuilding_the_projections_reproduces_the_tables(organization, users_worker, celery_worker, smtp):
    full_flow(organization, smtp)

    def snapshot():
        return [
            sorted(model.objects.values_list(), key=lambda row: str(row[0]))
            for model in (Invitation, InvitationToken, Membership)
        ]

    live = snapshot()
    assert len(live[0]) == 3 and len(live[1]) == 4 and len(live[2]) == 1
    assert {s for (s,) in Invitation.objects.values_list("status")} == {"accepted", "declined", "revoked"}
    replayed = projections_rebuild(names=["invitations", "memberships"], batch_size=4)
    assert replayed >= 15
    assert snapshot() == live


def test_a_new_invitation_is_written_by_its_append_statement_as_a_rebuild_writes_it(organization):
    """Outside a transaction, a new invitation's row travels in its event's append statement (no ORM insert after
    it); every column must equal what the projection's apply() writes when it replays the event."""
    with CaptureQueriesContext(connection) as queries:
        (invitation_id,) = services.invitations_generate(
            organization_id=organization,
            invitees=[
                Invitee(email="Dana@Example.org", first_name="Dana", last_name="Diaz", role="organization_admin")
            ],
            key_prefix="rebuild-test/1/generate_invitations",
            metadata=EventMetadata(correlation_id=organization),
            invited_by_id=None,
            bootstrap_workflow_id="org-bootstrap-test",
        )
    statements = [q["sql"] for q in queries.captured_queries]
    assert not [sql for sql in statements if sql.startswith('INSERT INTO "invitations_invitation"')]
    invitation = Invitation.objects.get(pk=invitation_id)
    assert (invitation.version, invitation.status, invitation.email_canonical) == (1, "pending", "dana@example.org")
    assert invitation.bootstrap_workflow_id == "org-bootstrap-test" and invitation.last_name == "Diaz"
    live = list(Invitation.objects.filter(pk=invitation_id).values_list())
    projections_rebuild(names=["invitations"])
    assert list(Invitation.objects.filter(pk=invitation_id).values_list()) == live


@pytest.mark.parametrize("batch_size", [1, 2, 3, 1000])
def test_a_rebuild_replays_a_new_invitation_to_an_address_whose_last_one_was_revoked(organization, batch_size):
    """A failed bootstrap's compensation revokes its invitations and the retry invites the same people again.
    Only one invitation per address may be pending at a time, and a rebuild that meets the revocation and the
    new invitation in one batch must not insert the new one while the old one still reads pending."""

    def invite(emails, attempt):
        return services.invitations_generate(
            organization_id=organization,
            invitees=[Invitee(email=email) for email in emails],
            key_prefix=f"test-retry/{attempt}",
            metadata=EventMetadata(),
        )

    _, first = invite(["bystander@example.org", "again@example.org"], 1)
    services.invitation_revoke(invitation_id=first, reason="Bootstrap failed", signal=False)
    (second,) = invite(["again@example.org"], 2)

    def snapshot():
        return sorted(Invitation.objects.values_list("id", "email_canonical", "status", "version"), key=str)

    live = snapshot()
    statuses = {str(pk): status for pk, _, status, _ in live}
    assert (statuses[first], statuses[second]) == ("revoked", "pending")
    projections_rebuild(names=["invitations"], batch_size=batch_size)
    assert snapshot() == live


def test_access_log_lines_with_a_token_are_redacted():
    from invitations.logging import RedactInvitationTokens
    from invitations.mail import accept_url
    from invitations.tokens import token_issue

    token = token_issue()
    record = logging.LogRecord(
        "django.server", logging.INFO, "", 0, '"GET %s HTTP/1.1" 302 0', (accept_url(token.value),), None
    )
    assert RedactInvitationTokens().filter(record)
    assert token.verifier not in record.getMessage() and "/invitations/accept/[redacted]" in record.getMessage()
