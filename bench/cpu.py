"""CPU accounting for the benchmarks, from /proc: per process (with its children, for prefork pools), per
PostgreSQL backend of one database, and for the whole machine."""

import os
import threading
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and of its live descendants (a prefork pool's workers)."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            total += cpu_seconds(current)
            pending += _children(current)
        except OSError:
            continue  # gone meanwhile
    return total


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent not idle so far, summed over its CPUs."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / _TICK


def database_backends(database: str, others: set[int] | None = None) -> dict[int, float]:
    """CPU seconds of every PostgreSQL backend serving `database` (its process title names the database).

    `others`: pids known to be something else, skipped, and added to as found; a sampler that passes the same set
    each time reads only new processes' titles (reading every title twice a second cost the run's CPU too).
    """
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or (others is not None and int(entry.name) in others):
            continue
        try:
            title = Path(entry.path, "cmdline").read_bytes()
            if title.startswith(b"postgres: ") and f" {database} ".encode() in title:
                found[int(entry.name)] = cpu_seconds(int(entry.name))
            elif others is not None:
                others.add(int(entry.name))
        except OSError:
            continue  # gone meanwhile
    return found


class CpuMeter:
    """CPU seconds used during a phase by named processes (each with its children), the database's PostgreSQL
    backends and the whole machine. Backends come and go (connections are recycled), so a sampler thread keeps
    the last CPU time seen of each one."""

    def __init__(self, pids: dict[str, int], database: str, *, alone: frozenset[str] = frozenset({"bench"})) -> None:
        """`alone`: processes counted without their children (the script itself, which started the others)."""
        self.pids, self.database, self.alone = pids, database, alone
        self._stop = threading.Event()
        self._backends: dict[int, tuple[float, float]] = {}  # pid -> (CPU when first seen in the phase, last)
        self._thread: threading.Thread | None = None

    def _now(self) -> dict[str, float]:
        used = {
            name: cpu_seconds(pid) if name in self.alone else tree_cpu_seconds(pid) for name, pid in self.pids.items()
        }
        return used | {"machine": machine_busy_seconds()}

    def start(self) -> None:
        self.before = self._now()
        self._backends = {pid: (cpu, cpu) for pid, cpu in database_backends(self.database).items()}
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample_backends, name="cpu-meter", daemon=True)
        self._thread.start()

    def _sample_backends(self) -> None:
        others: set[int] = set()  # a recycled pid that becomes a backend is missed: rare, and a few ms at most
        while not self._stop.wait(0.5):
            for pid, cpu in database_backends(self.database, others).items():
                first = self._backends.get(pid, (0.0, 0.0))[0]  # a backend born in the phase counts from zero
                self._backends[pid] = (first, cpu)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        after = self._now()
        used = {name: after[name] - self.before[name] for name in after}
        used["postgres"] = sum(last - first for first, last in self._backends.values())
        return {name: round(seconds, 1) for name, seconds in used.items()}
