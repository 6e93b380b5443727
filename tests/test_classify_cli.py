"""``cadence classify``: the JSON contract scripts rely on, errors per file, exit statuses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from cadence.cli import main

DATA = Path(__file__).parent / "data" / "classify"
KEYS = ["file", "kind", "bounces", "auto_reply", "reply_text", "in_reply_to"]
BOUNCE_KEYS = ["recipient", "status", "reply_code", "reason", "hard", "action"]


def test_json_lines_have_the_exact_contract_shape() -> None:
    files = [DATA / "postfix_dsn.eml", DATA / "ooo_de.eml", DATA / "human_reply.eml"]
    result = CliRunner().invoke(main, ["classify", "--json", *map(str, files)])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().split("\n")
    assert len(lines) == 3
    objects = [json.loads(line) for line in lines]
    for obj, path in zip(objects, files, strict=True):
        assert list(obj) == KEYS
        assert obj["file"] == str(path)
    bounce, ooo, reply = objects
    assert bounce["kind"] == "bounce"
    assert [list(b) for b in bounce["bounces"]] == [BOUNCE_KEYS]
    assert bounce["bounces"][0] == {
        "recipient": "jane.doe@prospect.example", "status": "5.1.1", "reply_code": "550",
        "reason": "userunknown", "hard": True, "action": "failed",
    }
    assert bounce["auto_reply"] is None
    assert "<cadence.step1.42@sender.example>" in bounce["in_reply_to"]
    assert ooo["kind"] == "auto_reply"
    assert ooo["auto_reply"] == {"return_date": "2025-03-17"}
    assert ooo["bounces"] == []
    assert reply["kind"] == "reply"
    assert reply["auto_reply"] is None
    assert reply["reply_text"].startswith("Hi Sam,")
    assert "On Tue" not in reply["reply_text"]
    assert reply["in_reply_to"][0] == "<cadence.step1.42@sender.example>"


def test_a_bad_file_reports_an_error_and_the_others_still_run(tmp_path: Path) -> None:
    missing = tmp_path / "missing.eml"
    files = [DATA / "not_a_message.bin", missing, DATA / "human_reply.eml"]
    result = CliRunner().invoke(main, ["classify", "--json", *map(str, files)])
    assert result.exit_code == 1
    bad, gone, good = (json.loads(line) for line in result.output.strip().split("\n"))
    assert bad["file"] == str(DATA / "not_a_message.bin")
    assert bad["error"]["code"] == "malformed_message"
    assert gone["error"]["code"] == "unreadable_file"
    assert good["kind"] == "reply"


def test_readable_summary_and_usage_error() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["classify", str(DATA / "postfix_dsn.eml"),
                                  str(DATA / "ooo_de.eml")])
    assert result.exit_code == 0
    assert "postfix_dsn.eml: bounce" in result.output
    assert "jane.doe@prospect.example: userunknown (hard" in result.output
    assert "ooo_de.eml: auto_reply" in result.output
    assert "back on: 2025-03-17" in result.output
    assert runner.invoke(main, ["classify"]).exit_code == 2


def test_classify_in_a_real_process() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from cadence.cli import main; main()", "classify", "--json",
         str(DATA / "postfix_dsn.eml"), str(DATA / "not_a_message.bin")],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 1, proc.stderr
    first, second = (json.loads(line) for line in proc.stdout.strip().split("\n"))
    assert list(first) == KEYS
    assert first["bounces"][0]["hard"] is True
    assert second["error"]["code"] == "malformed_message"
