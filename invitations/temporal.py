from datetime import timedelta

from django.conf import settings

from temporal_bridge.registry import Recurring, register

from . import activities
from .payloads import DELIVERY_SWEEP_SCHEDULE_ID, USERS_QUEUE
from .workflows import DeliverySweepWorkflow, UserInvitationWorkflow

# The bootstrap workflow calls these by name on its own queue.
register("bootstrap", activities=[activities.generate, activities.enqueue_emails, activities.revoke_pending])
register(
    USERS_QUEUE,
    workflows=[UserInvitationWorkflow, DeliverySweepWorkflow],
    activities=[activities.provision, activities.remind, activities.expire, activities.requeue_stale_deliveries],
    recurring=[
        Recurring(
            DELIVERY_SWEEP_SCHEDULE_ID,
            DeliverySweepWorkflow,
            every=lambda: timedelta(seconds=settings.INVITATION_DELIVERY_SWEEP_INTERVAL),
        )
    ],
)
