import logging
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, transaction
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from eventstore.models import Event
from temporal_bridge.client import (
    describe_workflow,
    start_workflow_on_commit,
    start_workflow_rollback_unsafe,
    temporal,
)
from tests.invitations.helpers import wait_until
from tests.temporal_bridge.sample_workflows import RecordResult, SampleInput

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def result_of(workflow_id: str):
    async def wait(client):
        return await client.get_workflow_handle(workflow_id, result_type=list[RecordResult]).result()

    return temporal.run(wait, timeout=60)


def test_sync_orm_activities_run_on_the_activity_thread_pool(temporal_worker):
    org_id = str(uuid.uuid4())
    with temporal_worker(["sample"]):
        start_workflow_rollback_unsafe(
            "SampleWorkflow", SampleInput(org_id, steps=2), id=f"sample-{org_id}", queue="sample"
        )
        results = result_of(f"sample-{org_id}")
    assert all(r.thread.startswith("activity-sample") for r in results)
    events = list(Event.objects.filter(stream_id=org_id).order_by("stream_version"))
    assert [e.event_type for e in events] == ["organization.created", "organization.dns_verified"]
    assert events[0].workflow_id == f"sample-{org_id}"
    assert events[0].metadata["step"] == "record"
    assert events[0].idempotency_key == f"sample-{org_id}/1/record"


def test_an_activity_recovers_from_a_connection_the_database_dropped(temporal_worker):
    """The stale-connection outage: the server drops an idle connection between two activities."""
    org_id = str(uuid.uuid4())
    with temporal_worker(["sample"], max_concurrent_activities=1):
        start_workflow_rollback_unsafe("SampleWorkflow", SampleInput(org_id), id=f"a-{org_id}", queue="sample")
        (first,) = result_of(f"a-{org_id}")
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [first.backend_pid])
        start_workflow_rollback_unsafe(
            "SampleWorkflow", SampleInput(str(uuid.uuid4())), id=f"b-{org_id}", queue="sample"
        )
        (second,) = result_of(f"b-{org_id}")
    assert second.thread == first.thread, "both activities ran on the one activity thread"
    assert second.backend_pid != first.backend_pid


def test_workflows_start_only_after_the_transaction_commits(temporal_env):
    rolled_back, committed = f"rb-{uuid.uuid4()}", f"ok-{uuid.uuid4()}"
    with pytest.raises(RuntimeError, match="boom"), transaction.atomic():
        start_workflow_on_commit("SampleWorkflow", SampleInput("x"), id=rolled_back, queue="sample")
        raise RuntimeError("boom")
    with transaction.atomic():
        start_workflow_on_commit("SampleWorkflow", SampleInput("y"), id=committed, queue="sample")
        with pytest.raises(RPCError, match="not found"):
            describe_workflow(committed)
    assert describe_workflow(committed).status == WorkflowExecutionStatus.RUNNING
    with pytest.raises(RPCError, match="not found"):
        describe_workflow(rolled_back)


def test_a_workflow_id_cannot_run_twice_at_once(temporal_env):
    workflow_id = f"twice-{uuid.uuid4()}"
    start_workflow_rollback_unsafe("SampleWorkflow", SampleInput("x"), id=workflow_id, queue="sample")
    with pytest.raises(WorkflowAlreadyStartedError):
        start_workflow_rollback_unsafe("SampleWorkflow", SampleInput("x"), id=workflow_id, queue="sample")


def test_the_facade_keeps_one_client_per_process(temporal_env):
    async def ident(client):
        return id(client)

    assert temporal.run(ident) == temporal.run(ident)


def test_worker_command_drains_in_flight_activities_on_sigterm(temporal_env):
    org_id = str(uuid.uuid4())
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{settings.DATABASES['default']['NAME']}",
        "TEMPORAL_ADDRESS": settings.TEMPORAL_ADDRESS,
        "TEMPORAL_TASK_QUEUE_PREFIX": settings.TEMPORAL_TASK_QUEUE_PREFIX,
    }
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "run_temporal_worker", "--task-queue", "sample", "--shutdown-timeout", "20"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        start_workflow_rollback_unsafe(
            "SampleWorkflow", SampleInput(org_id, sleep=3.0), id=f"drain-{org_id}", queue="sample"
        )
        wait_until(lambda: _activity_started(f"drain-{org_id}"), timeout=30)
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=60)
    finally:
        worker.kill()
    assert worker.returncode == 0, output
    assert "Temporal worker stopped" in output
    # The activity that was running when SIGTERM came finished and wrote its event.
    assert Event.objects.filter(stream_id=org_id, event_type="organization.created").count() == 1


def _activity_started(workflow_id: str) -> bool:
    try:
        return bool(describe_workflow(workflow_id).raw_description.pending_activities)
    except RPCError:
        return False


def test_worker_command_refuses_an_unknown_queue(temporal_env):
    out = subprocess.run(
        [sys.executable, "manage.py", "run_temporal_worker", "--task-queue", "nope"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert "No workflows or activities are registered for nope" in out.stderr


def test_a_stopped_worker_takes_no_new_work_on_any_queue_while_it_drains(temporal_env, caplog):
    """A stop reaches every queue at once: while a slow activity drains on one queue, a workflow started on
    another queue after the stop is not taken (the worker shut queues down one by one, and kept polling the
    others meanwhile)."""
    from temporal_bridge.testing import running_worker
    from temporal_bridge.worker import WorkerOptions

    options = WorkerOptions.from_settings(["sample", "sample2"], 4, 20.0)
    with running_worker(options) as request_stop:
        slow, slow_org, late_org = f"slow-{uuid.uuid4()}", str(uuid.uuid4()), str(uuid.uuid4())
        start_workflow_rollback_unsafe("SampleWorkflow", SampleInput(slow_org, sleep=4.0), id=slow, queue="sample2")
        wait_until(lambda: _activity_started(slow), timeout=30)
        with caplog.at_level(logging.INFO, logger="temporal_bridge.worker"):
            request_stop()
            wait_until(lambda: "Draining in-flight work" in caplog.text, timeout=30)  # every queue stops here
        late = f"late-{uuid.uuid4()}"
        start_workflow_rollback_unsafe("SampleWorkflow", SampleInput(late_org), id=late, queue="sample")
    # The activity in flight at the stop finished; the workflow started after it was not touched.
    assert Event.objects.filter(stream_id=slow_org, event_type="organization.created").count() == 1
    assert not Event.objects.filter(stream_id=late_org).exists()
    assert describe_workflow(late).status == WorkflowExecutionStatus.RUNNING


def test_a_worker_stopped_while_waiting_for_temporal_leaves_at_once(temporal_env):
    # It would keep trying for 300 s: leaving within the 30 s `communicate` allows is leaving at once.
    command = ["run_temporal_worker", "--task-queue", "sample", "--shutdown-timeout", "1", "--connect-timeout", "300"]
    worker = subprocess.Popen(
        [sys.executable, "manage.py", *command],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "TEMPORAL_ADDRESS": "127.0.0.1:9"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        seen = ""
        while "Waiting for Temporal at" not in seen:  # it is waiting for Temporal now
            line = worker.stdout.readline()
            assert line, f"the worker ended before it waited for Temporal: {seen}"
            seen += line
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
    finally:
        worker.kill()
    assert worker.returncode == 0, seen + output
    assert "stopped before it reached Temporal" in output
