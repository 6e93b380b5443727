"""Recognise the mail server product (and Microsoft Exchange's version) from what it says.

Exchange tells its version in different ways across releases:

* 2000 / 2003: ``Microsoft Exchange Server 2003 IMAP4rev1 server version 6.5.7638.1 (host) ready.``
* 2007: ``Microsoft Exchange Server 2007 IMAP4 service ready``
* 2010 and later, and Microsoft 365: ``The Microsoft Exchange IMAP4 service is ready.``, Microsoft
  365 followed by ``[base64 of the UTF-16LE host name]`` (``*.prod.outlook.com``).

UIDPLUS arrived in Exchange 2010 SP1 (build 14.1), so a greeting without a version is judged by
the capabilities: with UIDPLUS it is 2010 SP1 or newer.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

# (major, minor) build -> product name.  Builds from Microsoft's release tables.
_EXCHANGE_BUILDS: list[tuple[tuple[int, int], str]] = [
    ((6, 0), "Exchange 2000"),
    ((6, 5), "Exchange 2003"),
    ((8, 0), "Exchange 2007"),
    ((14, 0), "Exchange 2010"),
    ((14, 1), "Exchange 2010 SP1"),
    ((14, 2), "Exchange 2010 SP2"),
    ((14, 3), "Exchange 2010 SP3"),
    ((15, 0), "Exchange 2013"),
    ((15, 1), "Exchange 2016"),
    ((15, 2), "Exchange 2019"),
    ((15, 20), "Exchange Online"),
]
_YEAR_BUILD = {"2000": (6, 0), "2003": (6, 5), "2007": (8, 0), "2010": (14, 0),
               "2013": (15, 0), "2016": (15, 1), "2019": (15, 2)}
MINIMUM_EXCHANGE = (14, 1)  # Exchange 2010 SP1: the first with UIDPLUS


@dataclass(frozen=True)
class ServerIdentity:
    product: str | None  # "Microsoft Exchange", "Dovecot", "Gmail", ... or None
    version_name: str | None  # "Exchange 2007", "Exchange 2010 SP1", ...
    build: tuple[int, ...] | None
    hostname: str | None  # Microsoft 365 puts its host name in the greeting
    source: str  # where the identification came from: "greeting", "id", ...

    @property
    def is_exchange(self) -> bool:
        return self.product is not None and "Exchange" in self.product

    def exchange_too_old(self, has_uidplus: bool) -> bool | None:
        """True/False when the version is known to be older / not older than 2010 SP1;
        None when unknown (UIDPLUS then decides)."""
        if not self.is_exchange:
            return None
        if self.build is not None:
            return tuple(self.build[:2]) < MINIMUM_EXCHANGE
        return None if has_uidplus else True

    def describe(self) -> str:
        parts = [self.version_name or self.product or "unknown server"]
        if self.build:
            parts.append("build " + ".".join(str(b) for b in self.build))
        if self.hostname:
            parts.append(f"host {self.hostname}")
        return ", ".join(parts)


def _name_for_build(build: tuple[int, ...]) -> str:
    name = "Exchange"
    for key, label in _EXCHANGE_BUILDS:
        if tuple(build[:2]) >= key:
            name = label
    return name


def _ms365_hostname(greeting: str) -> str | None:
    m = re.search(r"\[([A-Za-z0-9+/=]{16,})\]", greeting)
    if not m:
        return None
    try:
        host = base64.b64decode(m.group(1)).decode("utf-16-le")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return host if re.fullmatch(r"[A-Za-z0-9.-]+", host) else None


def identify(greeting: str, id_fields: dict[str, str] | None = None) -> ServerIdentity:
    """Identify an IMAP or SMTP server from its greeting and (IMAP) ID response."""
    fields = {k.lower(): v for k, v in (id_fields or {}).items()}
    text = greeting or ""
    if "microsoft exchange" in text.lower() or "exchange" in fields.get("name", "").lower():
        build: tuple[int, ...] | None = None
        m = re.search(r"version (\d+)\.(\d+)(?:\.(\d+))?(?:\.(\d+))?", text, re.I)
        id_name = fields.get("name", "").lower()
        id_version = (
            re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", fields.get("version", ""))
            if "exchange" in id_name or "microsoft" in id_name
            else None
        )
        if m:
            build = tuple(int(x) for x in m.groups() if x is not None)
        elif id_version:
            build = tuple(int(x) for x in id_version.groups() if x is not None)
        year = re.search(r"Exchange Server (\d{4})", text, re.I)
        if build is None and year and year.group(1) in _YEAR_BUILD:
            build = _YEAR_BUILD[year.group(1)]
        hostname = _ms365_hostname(text)
        if hostname and hostname.lower().endswith(".outlook.com"):
            return ServerIdentity("Microsoft Exchange Online (Microsoft 365)",
                                  "Exchange Online", build, hostname, "greeting")
        if build is not None:
            name = f"Exchange {year.group(1)}" if year and not m else _name_for_build(build)
            return ServerIdentity("Microsoft Exchange", name, build, hostname,
                                  "greeting" if (m or year) else "id")
        return ServerIdentity("Microsoft Exchange", None, None, hostname, "greeting")
    lowered = text.lower()
    for needle, product in (
        ("dovecot", "Dovecot"), ("gimap", "Gmail"), ("google", "Gmail"), ("cyrus", "Cyrus IMAP"),
        ("courier", "Courier"), ("zimbra", "Zimbra"), ("yahoo", "Yahoo Mail"),
        ("postfix", "Postfix"), ("exim", "Exim"), ("icewarp", "IceWarp"),
        ("kerio", "Kerio Connect"), ("mdaemon", "MDaemon"),
        ("microsoft esmtp", "Microsoft Exchange"),
    ):
        if needle in lowered or needle in fields.get("name", "").lower():
            return ServerIdentity(product, None, None, None, "greeting")
    if fields.get("name"):
        return ServerIdentity(fields["name"], fields.get("version"), None, None, "id")
    return ServerIdentity(None, None, None, None, "greeting")
