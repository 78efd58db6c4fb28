"""The alerting rules under deploy/prometheus, and the metric names they read."""

import re
import shutil
from pathlib import Path

ALERTS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = ALERTS_DIR / "alerts.yml"
RULE_TESTS = ALERTS_DIR / "alerts.test.yml"

_METRIC = re.compile(r"\b((?:a4c|temporal)_[a-z_]+)\b")


def alert_metric_names() -> set[str]:
    """Every product metric an alert expression reads (Prometheus's own, such as `up`, left out)."""
    names: set[str] = set()
    for line in RULES.read_text().splitlines():
        if line.strip().startswith("#"):
            continue
        names.update(_METRIC.findall(line))
    return names


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is missing: install Debian's prometheus package (.ci/run does)"
    return path


def web_metric_names() -> set[str]:
    """The sample names the web side's /metrics exposes (read in-process; it needs the database)."""
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from a4c.metrics import registry

    families = text_string_to_metric_families(generate_latest(registry).decode())
    return {sample.name for family in families for sample in family.samples}
