from temporal_bridge.registry import register

from .activities import ACTIVITIES
from .payloads import BOOTSTRAP_QUEUE
from .workflows import OrganizationBootstrapWorkflow

register(BOOTSTRAP_QUEUE, workflows=[OrganizationBootstrapWorkflow], activities=ACTIVITIES)
