import importlib.util
import sys

from temporal_bridge.worker import WorkflowCodeCache
from tests.temporal_bridge.sample_workflows import SampleWorkflow

MODULE = SampleWorkflow.__module__


def _load_afresh(cache: WorkflowCodeCache):
    """Import the module the way the workflow sandbox does: a new module object from a new spec."""
    spec = cache.find_spec(MODULE, sys.modules["tests.temporal_bridge"].__path__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return spec, module


def test_workflow_modules_are_compiled_once_and_still_run_afresh_in_each_sandbox():
    cache = WorkflowCodeCache.install([SampleWorkflow])
    first_spec, first = _load_afresh(cache)
    second_spec, second = _load_afresh(cache)

    assert first_spec.loader.get_code(MODULE) is second_spec.loader.get_code(MODULE)
    assert first is not second and first.SampleWorkflow is not second.SampleWorkflow
    assert first.__file__ == second.__file__ == sys.modules[MODULE].__file__


def test_the_code_cache_is_installed_once_and_serves_only_workflow_modules_and_their_packages():
    cache = WorkflowCodeCache.install([SampleWorkflow])
    assert WorkflowCodeCache.install([SampleWorkflow]) is cache
    assert sum(isinstance(finder, WorkflowCodeCache) for finder in sys.meta_path) == 1
    package_path = sys.modules["tests.temporal_bridge"].__path__
    assert cache.find_spec("tests.temporal_bridge", sys.modules["tests"].__path__) is not None
    assert cache.find_spec("tests.temporal_bridge.sample_activities", package_path) is None
    assert cache.find_spec("json") is None
