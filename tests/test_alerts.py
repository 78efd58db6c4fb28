"""The alerting rules: valid, and firing (or not) as their unit tests say, checked by Prometheus's own promtool."""

import subprocess

from tests.support.alerts import RULE_TESTS, RULES, alert_metric_names, promtool, web_metric_names


def run_promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([promtool(), *args], cwd=RULES.parent, capture_output=True, text=True, check=False)


def test_the_rules_are_valid():
    result = run_promtool("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_the_example_configuration_is_valid():
    # Syntax only: its token file and hosts are the reader's to fill in (the rules are checked above).
    result = run_promtool("check", "config", "--syntax-only", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "prometheus.yml is valid prometheus config file syntax" in result.stdout


def test_each_alert_fires_when_it_should_and_only_then():
    result = run_promtool("test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_rules_read_the_metrics_the_product_exposes(db):
    """The web side's names here; the worker's against a real scrape (test_the_worker_serves_bootstrap_metrics)."""
    names = alert_metric_names()
    assert "a4c_organizations_pending_oldest_seconds" in names & web_metric_names()
    assert {"a4c_bootstraps_total", "a4c_invitation_emails_total", "temporal_worker_task_slots_available"} <= names
