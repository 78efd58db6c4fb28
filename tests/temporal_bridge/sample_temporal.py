from temporal_bridge.registry import register

from .sample_activities import record
from .sample_workflows import SampleWorkflow

register("sample", workflows=[SampleWorkflow], activities=[record])
register("sample2", workflows=[SampleWorkflow], activities=[record])  # a second queue, for the drain test
