"""Registers the fan-out workflow of the invitation tests on the bootstrap queue, for bench/invitations.py."""

from temporal_bridge.registry import register
from tests.invitations.fanout_workflow import FanOutWorkflow

register("bootstrap", workflows=[FanOutWorkflow])
