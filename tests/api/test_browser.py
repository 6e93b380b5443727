"""The dashboard in headless Chromium (Debian's ``chromium``; Playwright drives it, no browser
download) against ``cadence serve`` run as a user runs it, workers included, and the Dovecot
test bed: first-run admin, sign-in, connect a mailbox (a failing check first, then a passing
one), write a two-step cadence, import prospects, preview, enroll — then see the sent step and
the prospect's reply, with its extracted text, on the timeline.  SIGTERM stops it cleanly.

Set CADENCE_SCREENSHOTS=docs/screenshots to keep the pages' screenshots."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from engine.helpers import read_folder  # tests/ is on sys.path (pytest rootdir conftest)

from cadence.testing.fixtures import TestMailbox, require_server

from .helpers import append_reply

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip
PASSWORD = "correct horse battery"


class Served:
    def __init__(self, proc: subprocess.Popen[str], url: str, lines: queue.Queue[str]) -> None:
        self.proc, self.url, self.lines = proc, url, lines
        self.output: list[str] = []

    def wait_for_line(self, pattern: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            self.output.append(line)
            if re.search(pattern, line):
                return line
        raise AssertionError(f"no line matching {pattern!r}:\n{''.join(self.output)}")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CADENCE_")}
    env.update(
        CADENCE_HOME=str(tmp_path / "home"),
        CADENCE_SECRET_KEY="browser-test-secret",
        CADENCE_ISPDB_URL="",
        PYTHONUNBUFFERED="1",
    )
    command = [sys.executable, "-c", "from cadence.cli import main; main()", "serve"]
    proc = subprocess.Popen(
        [*command, "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    server = Served(proc, f"http://127.0.0.1:{port}", lines)
    try:
        yield server
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _shots() -> Callable[[object, str], None]:
    target = os.environ.get("CADENCE_SCREENSHOTS")

    def shoot(page: object, name: str) -> None:
        if target:
            Path(target).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]

    return shoot


def test_zero_to_a_reply_in_the_browser(
    served: Served, new_mailbox: Callable[..., TestMailbox]
) -> None:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        require_server("Chromium (apt-get install chromium chromium-driver)")
    try:
        from playwright import sync_api
    except ImportError:
        require_server("Playwright for Python (pip install -e '.[dev]')")
    rep, pat = new_mailbox("rep"), new_mailbox("pat")
    shoot = _shots()

    setup = served.wait_for_line(r"/setup\?token=")
    setup_url = setup.strip()
    assert setup_url.startswith(served.url)
    served.wait_for_line(r"Uvicorn running|Application startup complete|Started server")

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1366, "height": 860})
        page.set_default_timeout(20_000)
        expect = sync_api.expect

        # First run: the one-time link creates the admin and signs them in.
        page.goto(setup_url)
        page.get_by_label("Your email").fill("rita@example.com")
        page.get_by_label("Your name").fill("Rita Rep")
        page.get_by_label("Team name").fill("Sales")
        page.locator("#password").fill(PASSWORD)
        page.get_by_label("Password again").fill(PASSWORD)
        shoot(page, "setup")
        page.get_by_role("button", name="Create the admin account").click()
        expect(page.get_by_role("heading", name="Connect a mailbox")).to_be_visible()

        # Sign out and in again.
        page.get_by_role("button", name="Sign out").click()
        page.get_by_label("Email").fill("rita@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        shoot(page, "sign-in")
        page.get_by_role("button", name="Sign in").click()
        page.goto(served.url + "/mailboxes/connect")

        # The wizard: email -> settings (nothing discoverable for cadence.test) -> check.
        page.get_by_label("Email address").fill(rep.address)
        page.get_by_role("button", name="Find the settings").click()
        expect(page.get_by_role("heading", name=f"Settings for {rep.address}")).to_be_visible()
        page.locator("#imap_host").fill(rep.host)
        page.locator("#imap_port").fill(str(rep.imaps_port))
        page.locator("#imap_security").select_option("tls")
        page.locator("#smtp_host").fill(rep.host)
        page.locator("#smtp_port").fill(str(rep.smtp_starttls_port))
        page.locator("#smtp_security").select_option("starttls")
        page.get_by_text("Advanced").click()
        page.get_by_label("Extra CA certificate file").fill(str(rep.ca_file))
        page.get_by_label("Your name, as prospects see it").fill("Rita Rep")
        page.get_by_label("Password").fill("not the password")
        page.get_by_role("button", name="Check and connect").click()
        expect(page.get_by_role("alert")).to_contain_text("Mailbox not connected")
        failed = page.locator(".check.fail").first
        expect(failed).to_contain_text("Fix:")
        expect(page.locator(".check.pass").first).to_be_visible()
        shoot(page, "connect-check-failed")
        page.get_by_label("Password").fill(rep.password)
        page.get_by_role("button", name="Check and connect").click()
        expect(page.get_by_role("heading", name=f"{rep.address} is connected")).to_be_visible()
        expect(page.locator(".check.fail")).to_have_count(0)
        report_link = page.get_by_role("link", name="Printable IT report")
        report_href = report_link.get_attribute("href", timeout=5000)
        assert report_href
        shoot(page, "connect-done")
        page.goto(served.url + report_href)
        expect(page.get_by_text(rep.address).first).to_be_visible()

        # A two-step cadence.
        page.goto(served.url + "/cadences/new")
        page.get_by_label("Name").fill("intro")
        page.get_by_label("Subject").fill("Quick question, {{ first_name }}")
        page.get_by_label("Body").fill("Hi {{ first_name }}, could we talk this week?")
        page.get_by_text("Send window").click()
        for day in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"):
            page.get_by_label(day, exact=True).check()
        page.locator("#s0_from").fill("00:00")
        page.locator("#s0_to").fill("24:00")
        page.get_by_role("button", name="Add a step").click()
        page.locator("#s1_body").fill("Following up on my note below.")
        page.get_by_role("button", name="Save the cadence").click()
        expect(page.get_by_role("status")).to_contain_text("saved")
        cadence_url = page.url.split("?")[0]

        # Prospects.
        page.goto(served.url + "/prospects")
        page.get_by_label("…or paste the rows").fill(
            f"email,first_name,last_name,company,timezone\n{pat.address},Pat,Jones,Acme,UTC\n"
        )
        page.get_by_role("button", name="Import").click()
        expect(page.get_by_role("status")).to_contain_text("Imported 1 prospect")
        expect(page.get_by_role("cell", name="Acme")).to_be_visible()
        shoot(page, "prospects")

        # Preview each step for Pat, then enroll.
        page.goto(cadence_url)
        page.get_by_label("Prospect").select_option(label=f"Pat Jones <{pat.address}>")
        page.get_by_role("button", name="Preview").click()
        expect(page.locator(".preview").first).to_contain_text("Quick question, Pat")
        expect(page.locator(".preview").nth(1)).to_contain_text("Re: Quick question, Pat")
        shoot(page, "cadence-editor")
        page.get_by_role("button", name="Enroll all my prospects").click()
        expect(page.get_by_role("status")).to_contain_text("1 prospect(s) enrolled")

        # The sender (inside `cadence serve`) sends step 1: it shows on the timeline.
        _reload_until(page, served.url + "/activity", "step 1 sent", timeout=45)
        sent = [m for m in read_folder(pat) if m["Subject"] == "Quick question, Pat"]
        assert len(sent) == 1
        append_reply(
            rep, pat.address, sent[0]["Message-ID"], "Re: Quick question, Pat",
            "Sounds good: call me on Thursday at 3pm.\n\n"
            f"On Fri, Nov 27, 2026 at 10:00 AM Rita Rep <{rep.address}> wrote:\n"
            "> Hi Pat, could we talk this week?\n",
        )  # fmt: skip
        # The watcher (IDLE) sees the reply: the cadence stops and the text shows.
        try:
            _reload_until(page, served.url + "/activity", "call me on Thursday at 3pm.", 40)
        except AssertionError:
            while not served.lines.empty():
                served.output.append(served.lines.get())
            raise AssertionError("".join(served.output[-80:])) from None
        reply = page.locator("blockquote.reply").first
        expect(reply).to_have_text(re.compile(r"^Sounds good: call me on Thursday at 3pm\.\s*$"))
        expect(page.get_by_text("replied", exact=True).first).to_be_visible()
        shoot(page, "activity")

        page.goto(cadence_url)
        expect(page.get_by_label("Replied: 1 of 1")).to_be_visible()
        shoot(page, "cadence-funnel")
        page.goto(served.url + "/")
        shoot(page, "overview")
        page.goto(served.url + "/mailboxes")
        expect(page.get_by_role("row", name=re.compile(rep.address))).to_contain_text("active")
        shoot(page, "mailboxes")
        page.goto(served.url + "/cadences")
        shoot(page, "cadences")
        page.goto(served.url + "/mailboxes/connect")
        shoot(page, "connect-email")
        browser.close()

    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(30) == 0
    served.wait_for_line(r"^Stopped\.")


def _reload_until(page: object, url: str, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        page.goto(url)  # type: ignore[attr-defined]
        if text in page.content():  # type: ignore[attr-defined]
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} did not appear on {url} within {timeout}s")
        time.sleep(1.0)
