"""``ioc rules check``: what an operator runs before deploying a changed rule file."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from ioc.cli import app
from ioc.config import DEFAULT_ALERT_RULES

runner = CliRunner()


def test_the_committed_rules_load_and_the_report_says_what_is_disabled() -> None:
    result = runner.invoke(app, ["rules", "check", str(DEFAULT_ALERT_RULES)], env={})
    assert result.exit_code == 0, result.output
    assert "IOC_ALERTMANAGER_URL" in result.output  # the receiver it could not enable


def test_a_broken_rule_file_fails_with_its_file_line_and_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "rules:\n"
        "  - id: brute\n"
        "    kind: correlation\n"
        "    where: {category: [brute_force]}\n"
        "    group_by: [src_ip]\n"
        "    window: 5 minutes\n"
        "    min_events: 10\n"
    )
    result = runner.invoke(app, ["rules", "check", str(bad)], env={})
    assert result.exit_code == 1
    assert "bad.yaml:6" in result.output
    assert "rules[0].window" in result.output
