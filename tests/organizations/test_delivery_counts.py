"""The bootstrap's count of invitation emails, driven through its signal handler (plain logic: no server needed)."""

from invitations.payloads import DeliveryReport, Invitee
from organizations.payloads import BootstrapInput
from organizations.workflows import OrganizationBootstrapWorkflow


def waiting_for(*invitation_ids: str) -> OrganizationBootstrapWorkflow:
    bootstrap = OrganizationBootstrapWorkflow(
        BootstrapInput("org", "Harbor", "provider", "harbor", [Invitee("a@example.org")])
    )
    bootstrap._list_invitations(list(invitation_ids))
    return bootstrap


def test_repeats_count_once_and_a_later_success_replaces_a_failure():
    bootstrap = waiting_for("i1", "i2", "i3")
    for report in [
        DeliveryReport("i1", "sent"),
        DeliveryReport("i1", "sent"),
        DeliveryReport("i2", "failed", error="550"),
        DeliveryReport("i2", "failed", error="550"),
        DeliveryReport("elsewhere", "sent"),
    ]:
        bootstrap.invitation_delivery(report)
    counts = bootstrap._state.invitations
    assert (counts.sent, counts.failed, counts.pending, counts.failed_invitation_ids) == (1, 1, 1, ["i2"])

    bootstrap.invitation_delivery(DeliveryReport("i2", "sent", attempts=2))  # support resent it
    bootstrap.invitation_delivery(DeliveryReport("i2", "failed"))  # an old copy: a success stands
    counts = bootstrap._state.invitations
    assert (counts.sent, counts.failed, counts.pending, counts.failed_invitation_ids) == (2, 0, 1, [])


def test_a_report_after_the_wait_ended_leaves_the_final_count_alone():
    bootstrap = waiting_for("i1", "i2", "i3")
    bootstrap.invitation_delivery(DeliveryReport("i1", "sent"))
    final = bootstrap._count_invitations(final=True)
    assert (final.sent, final.failed, final.pending, final.failed_invitation_ids) == (1, 2, 0, ["i2", "i3"])

    bootstrap.invitation_delivery(DeliveryReport("i2", "sent"))  # too late: the count was recorded
    assert bootstrap._state.invitations == final


def test_reports_that_come_before_the_invitations_are_listed_count_once_they_are():
    """After a timed-out workflow task, the replay delivers a report before the steps that list the invitations."""
    bootstrap = OrganizationBootstrapWorkflow(
        BootstrapInput("org", "Harbor", "provider", "harbor", [Invitee("a@example.org")])
    )
    bootstrap._early_reports = []  # what workflow.patched(EARLY_REPORTS_PATCH) gives a new run
    bootstrap.invitation_delivery(DeliveryReport("i1", "failed", error="451"))
    bootstrap.invitation_delivery(DeliveryReport("i1", "sent", attempts=2))
    bootstrap.invitation_delivery(DeliveryReport("earlier-attempt", "sent"))
    assert bootstrap._reports == {}

    bootstrap._list_invitations(["i1", "i2"])
    counts = bootstrap._state.invitations
    assert (counts.sent, counts.failed, counts.pending, counts.failed_invitation_ids) == (1, 0, 1, [])
    bootstrap.invitation_delivery(DeliveryReport("i2", "sent"))
    assert bootstrap._state.invitations.sent == 2 and bootstrap._state.invitations.pending == 0


def test_a_report_from_another_bootstrap_attempt_does_not_count():
    """A retried bootstrap is a new run of the same workflow: an earlier attempt's email that finishes late reports to
    it, possibly for the same pending invitation. Its "sent" must not stand in for this attempt's own email."""
    bootstrap = OrganizationBootstrapWorkflow(
        BootstrapInput("org", "Harbor", "provider", "harbor", [Invitee("a@example.org")], attempt=2)
    )
    bootstrap._ignores_other_attempts = True  # what workflow.patched(OTHER_ATTEMPT_REPORTS_PATCH) gives a new run
    bootstrap._list_invitations(["i1", "i2", "i3"])
    bootstrap.invitation_delivery(DeliveryReport("i1", "sent", bootstrap_attempt=1))
    bootstrap.invitation_delivery(DeliveryReport("i2", "sent", bootstrap_attempt=2))
    bootstrap.invitation_delivery(DeliveryReport("i3", "sent"))  # sent before reports carried the attempt
    counts = bootstrap._state.invitations
    assert (counts.sent, counts.pending) == (2, 1)
    assert set(bootstrap._reports) == {"i2", "i3"}
