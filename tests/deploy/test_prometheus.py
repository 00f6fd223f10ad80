"""``deploy/prometheus`` and ``deploy/grafana``: promtool accepts the scrape config and
the alert rules, the rules' unit tests (``rules_test.yml``) pass, and the dashboard is
valid JSON. That each metric they use is really exported is checked against the running
processes in ``tests/e2e/test_observability.py``."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "deploy" / "prometheus"
DASHBOARD = REPO / "deploy" / "grafana" / "tandem.json"
PROMTOOL = shutil.which("promtool")

needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (Debian package 'prometheus'; CI installs it)",
)

PAGED_ON = {
    "TandemNoWorkerReachable",
    "TandemRelayShareHigh",
    "TandemFailoverRateHigh",
    "TandemTTFTP99OverBudget",
    "TandemCloudBudgetNearlySpent",
    "TandemWorkersDraining",
}


def promtool(*args: str) -> str:
    assert PROMTOOL is not None
    result = subprocess.run(
        [PROMTOOL, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


@needs_promtool
def test_promtool_accepts_the_rules() -> None:
    assert "SUCCESS" in promtool("check", "rules", "rules.yml")


@needs_promtool
def test_promtool_accepts_the_scrape_config() -> None:
    out = promtool("check", "config", "prometheus.yml")
    assert "is valid prometheus config file syntax" in out


@needs_promtool
def test_the_alert_rules_unit_tests_pass() -> None:
    assert "SUCCESS" in promtool("test", "rules", "rules_test.yml")


def test_the_rules_cover_what_operators_page_on() -> None:
    rules = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert alerts >= PAGED_ON
    tested = yaml.safe_load((PROMETHEUS / "rules_test.yml").read_text())
    covered = {a["alertname"] for t in tested["tests"] for a in t.get("alert_rule_test", [])}
    assert covered >= PAGED_ON, f"no promtool test for {sorted(PAGED_ON - covered)}"


def test_the_scrape_config_scrapes_the_three_processes() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert jobs == {"tandem-edge", "tandem-worker", "tandem-signaling"}
    assert config["rule_files"] == ["rules.yml"]


def test_the_dashboard_is_valid_json_with_queries() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)) >= 8
    assert all(panel.get("targets") for panel in dashboard["panels"])
