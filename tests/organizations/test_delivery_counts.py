"""The bootstrap's count of invitation emails, driven through its signal handler (plain logic: no server needed)."""

from invitations.payloads import DeliveryReport, Invitee
from organizations.payloads import BootstrapInput
from organizations.workflows import OrganizationBootstrapWorkflow


def waiting_for(*invitation_ids: str) -> OrganizationBootstrapWorkflow:
    bootstrap = OrganizationBootstrapWorkflow(
        BootstrapInput("org", "Harbor", "provider", "harbor", [Invitee("a@example.org")])
    )
    bootstrap._expected_invitations = set(invitation_ids)
    bootstrap._count_invitations()
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
