"""The bootstrap with a bug in its workflow code, as a bad deploy could ship it: for the test that a bug is
retried by Temporal instead of compensated."""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from onboarding.payloads import BootstrapInput, BootstrapResult
    from onboarding.workflows import OrganizationBootstrapWorkflow

BUGGY_WORKFLOW = "BootstrapWithABugTestWorkflow"


@workflow.defn(name=BUGGY_WORKFLOW)
class BootstrapWithABug(OrganizationBootstrapWorkflow):
    @workflow.run
    async def run(self, params: BootstrapInput) -> BootstrapResult:
        return await super().run(params)

    async def _verify_dns(self, state):
        raise TypeError("verify() takes 2 positional arguments but 3 were given")
