"""How many CPUs this process may use, for sizing process pools in containers.

os.cpu_count() counts the host's CPUs. A container is held to fewer by its CPU affinity (cpusets) and by the
cgroup v2 quota (`cpu.max`: "<quota> <period>" microseconds, or "max"), set on its cgroup or any ancestor.
"""

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _own_cgroup(proc_cgroup: Path) -> str | None:
    """The process's cgroup v2 path ("0::/path" in /proc/self/cgroup), or None without cgroup v2."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            return line[3:]
    return None


def cgroup_cpu_limit(root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """The tightest cpu.max quota on the process's cgroup and its ancestors, in CPUs; None when unlimited."""
    own = _own_cgroup(proc_cgroup)
    if own is None:
        return None
    limits = []
    directory = root / own.lstrip("/")
    for candidate in (directory, *directory.parents):
        try:
            quota, period = (candidate / "cpu.max").read_text().split()[:2]
        except (OSError, ValueError):
            quota = "max"
        if quota != "max":
            limits.append(int(quota) / int(period))
        if candidate == root:
            break
    return min(limits) if limits else None


def available_cpus(root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> int:
    """CPUs this process may run on: its affinity, capped by its cgroup quota (rounded up), at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    limit = cgroup_cpu_limit(root, proc_cgroup)
    if limit is not None:
        cpus = min(cpus, math.ceil(limit))
    return max(cpus, 1)
