from invitations.activities import revoke_pending
from organizations.activities import ACTIVITIES as ORGANIZATION_ACTIVITIES
from temporal_bridge.queues import TaskQueue
from temporal_bridge.registry import register

from .workflows import OrganizationBootstrapWorkflow

# The bootstrap runs the organization steps, and the invitations' revoke as its compensation, as local activities:
# they are registered on its own queue.
register(
    TaskQueue.BOOTSTRAP,
    workflows=[OrganizationBootstrapWorkflow],
    activities=[*ORGANIZATION_ACTIVITIES, revoke_pending],
)
