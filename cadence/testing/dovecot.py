"""A private Dovecot for tests and benchmarks.

Each instance lives in its own directory with its own configuration (``dovecot -F -c FILE``),
never touching ``/etc/dovecot``, and listens on free high ports on loopback:

* ``imaps_port``: IMAP over implicit TLS (what Cadence uses in production, port 993's role);
* ``imap_port``: IMAP with STARTTLS, or plaintext only for the ``plaintext`` variant (143's role);
* ``lmtp_port``: LMTP, through which the SMTP test server and tests deliver mail.

Users live in a passwd-file (full email addresses as user names); Maildir storage; the
SPECIAL-USE folders Sent, Drafts, Trash and Junk are created on first login.  ``user+Folder@``
delivers straight into ``Folder`` (``lmtp_save_to_detail_mailbox``), which is how the SMTP
test server imitates providers that file the Sent copy themselves.

Facts about Dovecot 2.3 this module relies on:

* running as root, the unprivileged login and mail processes must traverse the instance
  directory, so it is made 0755 (``mktemp -d`` gives 0700 and logins then fail with
  "Temporary authentication failure");
* ``imap_capability`` replaces the advertised capabilities but Dovecot still implements them
  (APPEND still answers APPENDUID without UIDPLUS advertised), so clients must decide from the
  advertised list;
* a client on 127.0.0.1 counts as secure, so plaintext LOGIN works there without TLS: Cadence's
  refusal of plaintext is its own decision, and a client bound to 127.0.0.2 sees LOGINDISABLED;
* one failed login makes Dovecot slow down further logins from that source address for about
  30 s, so wrong-password tests connect from another loopback address such as 127.0.0.3.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cadence.testing.certs import CertPair

DEFAULT_PASSWORD = "correct horse battery staple"

# The capability string of a Microsoft Exchange 2013/2016 IMAP4 service, after login.
EXCHANGE_CAPABILITY = (
    "IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=NTLM AUTH=GSSAPI UIDPLUS MOVE ID CHILDREN IDLE "
    "NAMESPACE LITERAL+"
)
EXCHANGE_GREETING = "The Microsoft Exchange IMAP4 service is ready."
# Exchange 2007 greets with its version and has no UIDPLUS.
OLD_EXCHANGE_CAPABILITY = "IMAP4 IMAP4rev1 AUTH=NTLM AUTH=GSSAPI AUTH=PLAIN IDLE NAMESPACE LITERAL+"
OLD_EXCHANGE_GREETING = "Microsoft Exchange Server 2007 IMAP4 service ready"
NO_UIDPLUS_CAPABILITY = (
    "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT NAMESPACE CHILDREN "
    "SPECIAL-USE MOVE"
)


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class DovecotConfig:
    """What makes one test server differ from another."""

    name: str = "standard"
    cert: CertPair | None = None  # None: no TLS at all (the plaintext-only variant)
    imap_capability: str | None = None
    login_greeting: str | None = None
    imap_id_send: str | None = None
    # Raw lines appended to the configuration (for example the benchmark's connection limits).
    extra: str = ""
    listen: str = "127.0.0.1"


# Settings that carry thousands of concurrent TLS IDLE sessions (for watcher benchmarks).
MANY_SESSIONS = """
mail_max_userip_connections = 10000
default_client_limit = 10000
mailbox_idle_check_interval = 1s
service imap-login {
  service_count = 0
  process_min_avail = 2
  client_limit = 5000
  vsz_limit = 1G
}
service imap {
  process_limit = 5000
}
"""


@dataclass
class DovecotServer:
    config: DovecotConfig
    users: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    imap_port: int = 0
    imaps_port: int = 0
    lmtp_port: int = 0
    directory: Path = field(default_factory=lambda: Path())
    _process: subprocess.Popen[bytes] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> DovecotServer:
        binary = dovecot_binary()
        if binary is None:
            raise RuntimeError(
                "dovecot is not installed: apt-get install dovecot-imapd dovecot-lmtpd"
            )
        self.directory = Path(tempfile.mkdtemp(prefix=f"cadence-dovecot-{self.config.name}-"))
        self.directory.chmod(0o755)
        for sub in ("run", "state", "home"):
            (self.directory / sub).mkdir(mode=0o755)
        self.host = self.config.listen
        self.imap_port = free_port(self.host)
        self.imaps_port = free_port(self.host)
        self.lmtp_port = free_port(self.host)
        self._write_passwd()
        conf = self.directory / "dovecot.conf"
        conf.write_text(self._render_config())
        log = (self.directory / "master.log").open("wb")
        self._process = subprocess.Popen(
            [binary, "-F", "-c", str(conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        ports = [self.imap_port, self.lmtp_port] + ([self.imaps_port] if self.config.cert else [])
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"dovecot exited at start:\n{self.log_text()}")
            if all(_port_open(self.host, p) for p in ports):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not start within {timeout}s:\n{self.log_text()}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait(timeout=5)
        self._process = None
        if self.directory.name.startswith("cadence-dovecot-") and not os.environ.get(
            "CADENCE_KEEP_DOVECOT"
        ):
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_text(self) -> str:
        parts = []
        for name in ("master.log", "dovecot.log"):
            path = self.directory / name
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)

    # -- users and mail ----------------------------------------------------------------------

    def add_user(self, address: str, password: str = DEFAULT_PASSWORD) -> str:
        """Create (or reset) a mailbox user; Dovecot re-reads the passwd-file by itself."""
        self.users[address] = password
        if self.directory != Path():
            self._write_passwd()
        return address

    def deliver(self, recipient: str, message: bytes, sender: str = "") -> None:
        """Deliver a message into a user's mailbox over LMTP (``user+Folder@`` for a folder)."""
        with smtplib.LMTP(self.host, self.lmtp_port, timeout=10) as lmtp:
            lmtp.sendmail(sender, [recipient], message)

    def kick(self, address: str) -> None:
        """Drop every IMAP session of a user, as a server restart or a network cut would."""
        doveadm = shutil.which("doveadm") or "/usr/bin/doveadm"
        subprocess.run(
            [doveadm, "-c", str(self.directory / "dovecot.conf"), "kick", address],
            check=True, capture_output=True, timeout=10,
        )

    def maildir(self, address: str) -> Path:
        return self.directory / "home" / address / "Maildir"

    # -- internals ---------------------------------------------------------------------------

    def _write_passwd(self) -> None:
        # One passwd-file per user: Dovecot re-reads a shared file at most once a second, so a
        # user added right after a lookup would stay unknown for up to a second; a new file is
        # read at once.
        users_dir = self.directory / "users"
        users_dir.mkdir(mode=0o755, exist_ok=True)
        for user, password in self.users.items():
            path = users_dir / user
            line = f"{user}:{{PLAIN}}{password}::::::\n"
            if path.exists() and path.read_text() == line:
                continue
            tmp = users_dir / f".{user}.tmp"
            tmp.write_text(line)
            tmp.chmod(0o644)
            tmp.replace(path)
        uid, gid = _mail_ids()
        for user in self.users:
            home = self.directory / "home" / user
            if not home.exists():
                home.mkdir(mode=0o700)
                if os.geteuid() == 0:
                    os.chown(home, uid, gid)

    def _render_config(self) -> str:
        d = self.directory
        c = self.config
        internal_user, login_user = _service_users()
        uid, gid = _mail_ids()
        lines = [
            f"base_dir = {d}/run",
            f"state_dir = {d}/state",
            f"instance_name = cadence-{d.name}",
            f"log_path = {d}/dovecot.log",
            "protocols = imap lmtp",
            f"listen = {c.listen}",
            f"default_internal_user = {internal_user}",
            f"default_login_user = {login_user}",
            f"default_internal_group = {grp.getgrgid(pwd.getpwnam(internal_user).pw_gid).gr_name}",
            "first_valid_uid = 1",
            "first_valid_gid = 1",
            "auth_mechanisms = plain login",
            "mail_location = maildir:~/Maildir",
            "mail_max_userip_connections = 200",
            "recipient_delimiter = +",
            "lmtp_save_to_detail_mailbox = yes",
            "passdb {",
            "  driver = passwd-file",
            f"  args = scheme=PLAIN username_format=%u {d}/users/%u",
            "}",
            "userdb {",
            "  driver = passwd-file",
            f"  args = username_format=%u {d}/users/%u",
            f"  default_fields = uid={uid} gid={gid} home={d}/home/%u",
            "}",
            "namespace inbox {",
            "  inbox = yes",
            "  separator = /",
            "  mailbox Sent {\n    special_use = \\Sent\n    auto = subscribe\n  }",
            "  mailbox Drafts {\n    special_use = \\Drafts\n    auto = subscribe\n  }",
            "  mailbox Trash {\n    special_use = \\Trash\n    auto = subscribe\n  }",
            "  mailbox Junk {\n    special_use = \\Junk\n    auto = subscribe\n  }",
            "}",
            "service imap-login {",
            f"  inet_listener imap {{\n    address = {c.listen}\n    port = {self.imap_port}\n  }}",
        ]
        if c.cert is not None:
            lines.append(
                f"  inet_listener imaps {{\n    address = {c.listen}\n"
                f"    port = {self.imaps_port}\n    ssl = yes\n  }}"
            )
        else:
            lines.append("  inet_listener imaps {\n    port = 0\n  }")
        lines += [
            "}",
            "service lmtp {",
            f"  inet_listener lmtp {{\n    address = {c.listen}\n    port = {self.lmtp_port}\n  }}",
            "}",
        ]
        if c.cert is not None:
            lines += [
                "ssl = yes",
                f"ssl_cert = <{c.cert.cert}",
                f"ssl_key = <{c.cert.key}",
                "ssl_min_protocol = TLSv1.2",
                "disable_plaintext_auth = yes",
            ]
            if os.path.exists("/usr/share/dovecot/dh.pem"):
                lines.append("ssl_dh = </usr/share/dovecot/dh.pem")
        else:
            lines += ["ssl = no", "disable_plaintext_auth = no"]
        if c.imap_capability is not None:
            lines.append(f"imap_capability = {c.imap_capability}")
        if c.login_greeting is not None:
            lines.append(f"login_greeting = {c.login_greeting}")
        if c.imap_id_send is not None:
            lines.append(f"imap_id_send = {c.imap_id_send}")
        lines.append(c.extra)
        return "\n".join(lines) + "\n"


def _service_users() -> tuple[str, str]:
    if os.geteuid() == 0:
        return "dovecot", "dovenull"
    me = pwd.getpwuid(os.geteuid()).pw_name
    return me, me


def _mail_ids() -> tuple[int, int]:
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        return nobody.pw_uid, nobody.pw_gid
    return os.geteuid(), os.getegid()


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False
