from datetime import timedelta

from django.conf import settings

from temporal_bridge.queues import TaskQueue
from temporal_bridge.registry import Recurring, register

from .activities import ACTIVITIES
from .payloads import DELIVERY_SWEEP_SCHEDULE_ID
from .workflows import DeliverySweepWorkflow, InvitationDeliveryWorkflow, UserInvitationWorkflow

register(
    TaskQueue.USERS,
    workflows=[InvitationDeliveryWorkflow, UserInvitationWorkflow, DeliverySweepWorkflow],
    activities=ACTIVITIES,
    recurring=[
        Recurring(
            DELIVERY_SWEEP_SCHEDULE_ID,
            DeliverySweepWorkflow,
            every=lambda: timedelta(seconds=settings.INVITATION_DELIVERY_SWEEP_INTERVAL),
        )
    ],
)
