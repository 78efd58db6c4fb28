"""The production server: its access log never shows an invitation token, it sizes itself to the CPUs it is
granted, and two instances of one user run side by side."""

import os
import runpy
from pathlib import Path

import httpx

from a4c.capacity import available_cpus
from tests.support.servers import ROOT, gunicorn, gunicorns


def test_the_access_log_redacts_invitation_tokens():
    token = "Zk3selector0000.s3cretVerifierThatMustNotBeLogged"
    with gunicorn({**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}) as server:
        httpx.get(
            f"{server.url}/invitations/accept/{token}/",
            headers={"Referer": f"https://mail.example.test/?u=/invitations/accept/{token}/"},
        )
    assert "/invitations/accept/[redacted]" in server.output
    assert "s3cretVerifier" not in server.output


def _cgroup(tmp_path: Path, limits: dict[str, str]) -> tuple[Path, Path]:
    """A cgroup v2 tree with `limits` (cgroup path: cpu.max) and a /proc/self/cgroup placing us in /pod/app."""
    root = tmp_path / "cgroup"
    for path, cpu_max in limits.items():
        (root / path).mkdir(parents=True, exist_ok=True)
        (root / path / "cpu.max").write_text(cpu_max + "\n")
    (root / "pod" / "app").mkdir(parents=True, exist_ok=True)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text("0::/pod/app\n")
    return root, proc


def test_the_cpus_counted_are_those_the_process_may_use(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    # A quota of 1.5 CPUs on the pod, none on the container: 2, or fewer if the affinity allows fewer.
    assert available_cpus(*_cgroup(tmp_path / "a", {"pod": "150000 100000", "pod/app": "max 100000"})) == min(
        affinity, 2
    )
    # The tightest quota of the cgroup and its ancestors counts; at least one CPU.
    assert available_cpus(*_cgroup(tmp_path / "b", {"pod": "400000 100000", "pod/app": "20000 100000"})) == 1
    # No quota anywhere, or no cgroup v2: the affinity alone.
    assert available_cpus(*_cgroup(tmp_path / "c", {"pod": "max 100000"})) == affinity
    assert available_cpus(tmp_path / "none", tmp_path / "no-such-file") == affinity


def test_the_workers_follow_the_cpus_unless_gunicorn_workers_says(monkeypatch):
    monkeypatch.delenv("GUNICORN_WORKERS", raising=False)
    config = runpy.run_path(str(ROOT / "a4c" / "gunicorn.conf.py"))
    assert config["workers"] == 2 * available_cpus() + 1
    assert config["workers"] <= 2 * len(os.sched_getaffinity(0)) + 1
    monkeypatch.setenv("GUNICORN_WORKERS", "3")
    assert runpy.run_path(str(ROOT / "a4c" / "gunicorn.conf.py"))["workers"] == 3


def test_two_instances_of_one_user_both_serve_without_sharing_a_control_socket(tmp_path):
    """gunicorn's default control socket is one per user, in the home: a second instance would take it over."""
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "HOME": str(home)}
    env.pop("XDG_RUNTIME_DIR", None)  # else the default is there rather than in the home
    control = tmp_path / "second.ctl"
    with gunicorns(env, {**env, "GUNICORN_CONTROL_SOCKET": str(control)}) as (first, second):
        for served in (first, second):
            assert httpx.get(f"{served.url}/healthz").status_code == 200
        assert not (home / ".gunicorn").exists()
    assert "Control socket" not in first.output  # none unless asked for
    assert f"Control socket listening at {control}" in second.output  # where it was asked for
