"""The Prometheus alerts on the pipeline itself (deploy/prometheus/): they load, each fires
on its failure and not on its look-alike (promtool's unit tests), they only use metrics the
worker and the gateway export, and each one's runbook section exists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from ioc.api.alerts import ApiMetrics
from ioc.api.push import GatewayMetrics
from ioc.metrics import AlertMetrics, KpiGauges, PipelineMetrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy/prometheus/rules/ioc-pipeline.yml"
TESTS = ROOT / "deploy/prometheus/tests/ioc-pipeline.test.yml"
RUNBOOK = ROOT / "docs/operations.md"
# Series Prometheus itself adds to every scrape.
SCRAPE_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


def _promtool() -> str:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool is missing: run `make alertmanager` (Debian's prometheus package)")
    return tool


def _alerts() -> list[dict[str, object]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def _exported_series() -> set[str]:
    """Every series name the worker's and the gateway's /metrics can carry."""
    registry = CollectorRegistry()
    PipelineMetrics(registry)
    AlertMetrics(registry)
    KpiGauges(registry)
    GatewayMetrics(registry)
    ApiMetrics(registry)
    names: set[str] = set()
    for family in registry.collect():
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_sum", "_count"),
            "gauge": ("",),
        }[family.type]
        names.update(family.name + s for s in suffixes)
    return names


def test_promtool_accepts_the_rule_file() -> None:
    out = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_fires_on_its_failure_and_stays_quiet_otherwise() -> None:
    out = subprocess.run(
        [_promtool(), "test", "rules", TESTS.name],
        cwd=TESTS.parent,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_has_a_promtool_case_that_expects_it_to_fire() -> None:
    cases = yaml.safe_load(TESTS.read_text())["tests"]
    firing = {
        t["alertname"] for case in cases for t in case["alert_rule_test"] if t.get("exp_alerts")
    }
    assert {str(a["alert"]) for a in _alerts()} <= firing


def test_rules_use_only_metrics_the_pipeline_exports() -> None:
    exported = _exported_series() | SCRAPE_SERIES
    used: set[str] = set()
    for rule in _alerts():
        expr = re.sub(r"\{[^}]*\}|\[[^]]*\]", "", str(rule["expr"]))
        used.update(re.findall(r"\b(ioc_[a-z0-9_]+|up)\b", expr))
    assert used, "no metric found in the rules"
    assert used <= exported, f"not exported by any IOC process: {sorted(used - exported)}"


def test_every_alert_is_routed_to_operations_and_has_a_runbook_section() -> None:
    runbook = RUNBOOK.read_text()
    # GitHub's anchors: headings lower-cased, spaces to hyphens, other punctuation dropped.
    anchors = {
        re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", runbook, re.M)
    }
    for rule in _alerts():
        labels = rule["labels"]
        assert isinstance(labels, dict)
        assert labels["severity"] in ("warning", "critical"), rule["alert"]
        assert labels["team"] == "operations" and labels["component"] == "pipeline"
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        link = str(annotations["runbook_url"])
        assert link.startswith("docs/operations.md#"), rule["alert"]
        assert link.split("#", 1)[1] in anchors, f"{rule['alert']}: no section {link}"
