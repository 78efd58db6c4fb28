from temporal_bridge.registry import register

from . import activities
from .payloads import USERS_QUEUE
from .workflows import UserInvitationWorkflow

# The bootstrap workflow calls these by name on its own queue.
register("bootstrap", activities=[activities.generate, activities.enqueue_emails, activities.revoke_pending])
register(
    USERS_QUEUE,
    workflows=[UserInvitationWorkflow],
    activities=[activities.provision, activities.remind, activities.expire],
)
