"""The fan-out's count of invitation emails, driven through its signal handler (plain logic: no server needed)."""

from invitations.payloads import DeliveryReport
from invitations.workflows import InvitationDeliveryWorkflow


def waiting_for(*invitation_ids: str) -> InvitationDeliveryWorkflow:
    fan_out = InvitationDeliveryWorkflow()
    fan_out._expected = set(invitation_ids)
    return fan_out


def test_repeats_count_once_and_a_later_success_replaces_a_failure():
    fan_out = waiting_for("i1", "i2", "i3")
    for report in [
        DeliveryReport(invitation_id="i1", status="sent"),
        DeliveryReport(invitation_id="i1", status="sent"),
        DeliveryReport(invitation_id="i2", status="failed", error="550"),
        DeliveryReport(invitation_id="i2", status="failed", error="550"),
        DeliveryReport(invitation_id="elsewhere", status="sent"),
    ]:
        fan_out._record(report)
    counts = fan_out.counts()
    assert (counts.sent, counts.failed, counts.pending, counts.failed_invitation_ids) == (1, 1, 1, ["i2"])

    fan_out._record(DeliveryReport(invitation_id="i2", status="sent", attempts=2))  # support resent it
    fan_out._record(DeliveryReport(invitation_id="i2", status="failed"))  # an old copy: a success stands
    counts = fan_out.counts()
    assert (counts.sent, counts.failed, counts.pending, counts.failed_invitation_ids) == (2, 0, 1, [])


def test_a_report_after_the_wait_ended_leaves_the_final_count_alone():
    fan_out = waiting_for("i1", "i2", "i3")
    fan_out._record(DeliveryReport(invitation_id="i1", status="sent"))
    final = fan_out.final_counts()
    assert (final.sent, final.failed, final.pending, final.failed_invitation_ids) == (1, 2, 0, ["i2", "i3"])

    fan_out._record(DeliveryReport(invitation_id="i2", status="sent"))  # too late: the count was returned
    assert fan_out.state() == final


def test_reports_that_come_before_the_invitations_are_listed_count_once_they_are():
    """After a timed-out workflow task, a replay can deliver a report before the step that lists the invitations."""
    fan_out = InvitationDeliveryWorkflow()
    fan_out._record(DeliveryReport(invitation_id="i1", status="failed", error="451"))
    fan_out._record(DeliveryReport(invitation_id="i1", status="sent", attempts=2))
    fan_out._record(DeliveryReport(invitation_id="another-fan-out", status="sent"))
    assert fan_out.counts().total == 0

    fan_out._expected = {"i1", "i2"}
    counts = fan_out.counts()
    assert (counts.sent, counts.failed, counts.pending, counts.failed_invitation_ids) == (1, 0, 1, [])
    fan_out._record(DeliveryReport(invitation_id="i2", status="sent"))
    assert fan_out.counts().sent == 2 and fan_out.counts().pending == 0
