"""End to end, through the CLI, against the real test bed, on SQLite and PostgreSQL:
add a mailbox, apply a two-step cadence, import prospects, enroll, run the worker with an
injected clock, and find step 1 in each prospect's inbox and step 2 threaded under it on
schedule, with exactly one Sent copy of each."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from cadence.testing.fixtures import TestMailbox

from .helpers import body_of, cadence, cli_env, mailbox_options, read_folder

CADENCE_YAML = """\
name: intro
steps:
  - type: email
    subject: "Quick question, {{ first_name }}"
    body: "Hi {{ first_name | default('there') }}, ..."
    window: {days: [mon, tue, wed, thu, fri, sat, sun], from: "00:00", to: "24:00"}
  - type: email
    delay: {business_days: 2}
    reply_in_thread: true
    body: "Following up on my note below."
"""

FRIDAY = "2026-11-27T10:00:00+00:00"
MONDAY = "2026-11-30T10:00:00+00:00"  # one business day later: step 2 not due yet
TUESDAY = "2026-12-01T10:00:00+00:00"  # two business days after Friday: step 2 due


def test_two_step_cadence_end_to_end(
    db_url: str, tmp_path: Path, new_mailbox: Callable[..., TestMailbox]
) -> None:
    rep = new_mailbox("rep")
    pat, sam = new_mailbox("pat"), new_mailbox("sam")
    env = cli_env(tmp_path / "home", db_url, CADENCE_PASSWORD=rep.password)

    out = cadence(
        env, "mailbox", "add", *mailbox_options(rep), "--name", "Rita Rep",
        "--min-gap", "0", "--jitter", "0",
    )  # fmt: skip
    assert "added" in out.stdout

    (tmp_path / "intro.yaml").write_text(CADENCE_YAML)
    assert "created" in cadence(env, "cadence", "apply", str(tmp_path / "intro.yaml")).stdout
    assert "updated" in cadence(env, "cadence", "apply", str(tmp_path / "intro.yaml")).stdout

    (tmp_path / "prospects.csv").write_text(
        "email,first_name,last_name,company,timezone\n"
        f"{pat.address},Pat,Jones,Acme,Europe/Paris\n"
        f"{sam.address},,Smith,Initech,America/New_York\n"
    )
    out = cadence(env, "prospects", "import", str(tmp_path / "prospects.csv"))
    assert "Imported 2" in out.stdout

    cadence(env, "enroll", "--cadence", "intro", "--mailbox", rep.address, "--all", "--now", FRIDAY)
    listing = json.loads(cadence(env, "enrollments", "list", "--json").stdout)
    assert [(r["prospect"], r["state"], r["step"]) for r in listing] == [
        (pat.address, "active", 1),
        (sam.address, "active", 1),
    ]
    assert set(listing[0]) >= {"prospect", "cadence", "mailbox", "state", "step", "next_due_at"}

    # Friday: step 1 for both.  Pat's subject uses her name; Sam has none, so his subject
    # template ({{ first_name }} without a fallback) holds his enrollment instead of "Hi ,".
    counts = json.loads(cadence(env, "run", "--once", "--json", "--now", FRIDAY).stdout)
    assert counts["sent"] == 1 and counts["held"] == 1
    inbox = read_folder(pat)
    assert len(inbox) == 1
    first = inbox[0]
    assert first["Subject"] == "Quick question, Pat"
    assert first["From"].addresses[0].addr_spec == rep.address
    assert first["From"].addresses[0].display_name == "Rita Rep"
    assert first["Message-ID"].endswith("@cadence.test>")
    assert first.get_content_type() == "multipart/alternative"
    assert "Hi Pat, ..." in body_of(first, "plain")
    assert "Hi Pat, ..." in body_of(first, "html")
    assert read_folder(sam) == []
    listing = {
        r["prospect"]: r for r in json.loads(cadence(env, "enrollments", "list", "--json").stdout)
    }
    assert listing[sam.address]["state"] == "paused"
    assert "first_name" in listing[sam.address]["reason"]
    assert listing[pat.address]["step"] == 2
    assert listing[pat.address]["next_due_at"].startswith("2026-12-01T10:00")

    sent = read_folder(rep, "Sent")
    assert [m["Message-ID"] for m in sent] == [first["Message-ID"]]

    # Monday: one business day later, nothing is due.
    counts = json.loads(cadence(env, "run", "--once", "--json", "--now", MONDAY).stdout)
    assert counts["sent"] == 0
    assert len(read_folder(pat)) == 1

    # Tuesday: step 2, threaded under step 1.
    counts = json.loads(cadence(env, "run", "--once", "--json", "--now", TUESDAY).stdout)
    assert counts["sent"] == 1
    inbox = read_folder(pat)
    assert len(inbox) == 2
    second = next(m for m in inbox if m["Message-ID"] != first["Message-ID"])
    assert second["Subject"] == "Re: Quick question, Pat"
    assert second["In-Reply-To"] == first["Message-ID"]
    assert second["References"] == first["Message-ID"]
    body = body_of(second, "plain")
    assert body.startswith("Following up on my note below.")
    assert "> Hi Pat, ..." in body

    sent_ids = sorted(m["Message-ID"] for m in read_folder(rep, "Sent"))
    assert sent_ids == sorted([first["Message-ID"], second["Message-ID"]])

    # Running again sends nothing more and files no second copy.
    counts = json.loads(cadence(env, "run", "--once", "--json", "--now", TUESDAY).stdout)
    assert counts["sent"] == 0
    assert len(read_folder(pat)) == 2 and len(read_folder(rep, "Sent")) == 2
    listing = {
        r["prospect"]: r for r in json.loads(cadence(env, "enrollments", "list", "--json").stdout)
    }
    assert listing[pat.address]["state"] == "finished"
    assert listing[pat.address]["step"] == 2 and listing[pat.address]["next_due_at"] is None
