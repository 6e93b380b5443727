"""What a delivery report says around the server's words: the SMTP stage and who answered.

``bounce_reasons`` qualifies a reason with both.

**The SMTP stage.**  A "user unknown" answer to ``RCPT TO`` (RFC 5321 §3.3) is the server
looking the mailbox up; the same words after ``DATA`` - or with neither a stage nor an address
status (RFC 3463 X.1.x) to tie them to the lookup - come from a filter that read the message,
and the address itself may be fine.  Mail systems state the stage in a few fixed ways:

* Postfix: ``... (in reply to RCPT TO command)`` / ``(in reply to end of DATA command)``;
* Exim: ``SMTP error from remote mail server after RCPT TO:<...>`` / ``after end of data``;
* Sendmail, Courier and others quote the session: ``>>> RCPT To:<...>`` then ``<<< 550 ...``;
* qmail: ``... does not like recipient.`` (RCPT), ``... failed after I sent the message.``
  (DATA), ``... but sender was rejected.`` (MAIL FROM), ``... but greeting failed.``;
* a field or token: ``SMTP command: RCPT``, ``Last command: DATA``, ``SMTP:RCPT host ...``.

A "RCPT TO: address" line listing the original envelope is not a stage.

**The provider that answered.**  Some providers use generic words - "mailbox unavailable",
"no such user" - and only those, for an address they have no account for, as their postmaster
pages document.  When the report shows such a provider answered (its host names in the
Remote-MTA / Reporting-MTA fields, the report's text, the report's sender or the recipient's
own domain), its wording decides.  Orange and La Poste label every refusal with a code whose
last three digits name the cause.
"""

from __future__ import annotations

import re

# --- the SMTP stage ---------------------------------------------------------------------------

# Pseudo command "CONN": the connection or greeting itself was refused.
STAGES = ("CONN", "EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA")
BEFORE_DATA = frozenset({"CONN", "EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT"})

_WORD = {
    "rcpt": "RCPT", "mail": "MAIL", "data": "DATA", "ehlo": "EHLO", "helo": "HELO",
    "starttls": "STARTTLS", "auth": "AUTH", "lhlo": "EHLO",
}


def _word(token: str) -> str | None:
    return _WORD.get(token.lower())


# "(in reply to RCPT TO command)", "in reply to end of DATA command", "in reply to MAIL FROM"
_IN_REPLY = re.compile(
    r"in\s+reply\s+to\s+(?:the\s+)?(?:end\s+of\s+)?(rcpt(?=\s+to)|mail(?=\s+from)|data|ehlo|"
    r"helo|lhlo|starttls|auth)\b",
    re.I,
)
# Exim: "after RCPT TO:<x>", "after pipelined MAIL FROM", "after end of data", "after initial
# connection"
_AFTER = re.compile(
    r"\b(?:after|did\s+not\s+like\s+our|most\s+progress\s+was)\s+(?:pipelined\s+|sending\s+)?"
    r"(?:end\s+of\s+)?(rcpt(?=\s+(?:to|command|response))|mail(?=\s+(?:from|command))|data|ehlo|"
    r"helo|lhlo|starttls|auth)\b|"
    r"\bafter\s+(initial\s+connection|connect(?:ion)?\b|greeting|banner)",
    re.I,
)
# a transcript: the last client command before the first error reply
_TRANSCRIPT = re.compile(
    r"^\s*>>>\s*(rcpt|mail|data|ehlo|helo|lhlo|starttls|auth)\b[^\n]*\n"
    r"(?:(?!\s*(?:>>>|<<<))[^\n]*\n){0,3}?\s*<<<\s*[45]\d\d",
    re.I | re.M,
)
_FIELD = re.compile(
    r"(?:smtp command|last command|command)\s*[:|=]\s*(rcpt|mail|data|ehlo|helo|starttls|auth)\b",
    re.I,
)
# The command as an upper-case token next to the error ("SMTP:RCPT host ...", "[RCPT_TO]"),
# but not an envelope listed as a field ("  RCPT TO: someone@example.com").
_TOKEN = re.compile(r"(?<![A-Za-z0-9])(RCPT|DATA)(?![A-Za-z0-9])")
_ENVELOPE_FIELD = re.compile(r"^[ \t]*RCPT TO:[ \t]*<?[^\s<>@]+@", re.M)
_QMAIL = (
    (re.compile(r"does not like recipient|\bfor rcpt to response", re.I), "RCPT"),
    (re.compile(r"failed after i sent the message|didn't like the (?:message|data)", re.I),
     "DATA"),
    (re.compile(r"but sender was rejected", re.I), "MAIL"),
    (re.compile(r"but greeting failed|refused to talk to me|"
                r"wasn't able to establish an smtp connection", re.I), "CONN"),
)


def failed_command(text: str) -> str | None:
    """The SMTP command whose reply failed the delivery, or ``None`` when the report does not
    say.  When several stages are named, the one nearest the first error reply wins for a
    transcript; otherwise the first explicit statement does."""
    sample = text[:8000]
    match = _TRANSCRIPT.search(sample)
    if match:
        return _word(match.group(1))
    for pattern in (_IN_REPLY, _FIELD):
        match = pattern.search(sample)
        if match:
            return _word(match.group(1))
    match = _AFTER.search(sample)
    if match:
        return _word(match.group(1)) if match.group(1) else "CONN"
    for pattern, stage in _QMAIL:
        if pattern.search(sample):
            return stage
    listed = {m.start() + len(m.group(0)) - len(m.group(0).lstrip()) for m in
              _ENVELOPE_FIELD.finditer(sample)}
    tokens = {m.group(1) for m in _TOKEN.finditer(sample) if m.start() not in listed}
    if tokens:
        # both named: the later stage is the one that failed (the earlier one was answered)
        return "DATA" if "DATA" in tokens else "RCPT"
    return None


# --- the provider that answered ---------------------------------------------------------------

_Table = tuple[str, tuple[str, ...], tuple[tuple[str, re.Pattern[str]], ...]]


def _rx(*parts: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in parts), re.I)


PROVIDERS: tuple[_Table, ...] = (
    # Outlook.com / Hotmail: "550 Requested action not taken: mailbox unavailable" is the
    # answer for an address that has no mailbox there.
    ("outlook.com", ("hotmail.com", "outlook.com", "live.com", "msn.com"), (
        ("userunknown", _rx(r"requested action not taken: mailbox unavailable")),
    )),
    # Symantec / Broadcom Email Security.cloud (MessageLabs): "No such user", "Invalid
    # recipient" and "Recipient mailbox is not allowed" all mean the address is not valid.
    ("messagelabs", ("messagelabs.com",), (
        ("userunknown", _rx(r"\bno such user\b", r"\binvalid recipient\b",
                            r"mailbox is not allowed")),
        # it asks the client to authenticate rather than refusing to relay
        ("securityerror", _rx(r"turn on smtp authentication")),
    )),
    # Yahoo: "mailbox not found" is its reply for an address it does not host.
    ("yahoo", ("yahoodns.net", "yahoo.com", "yahoo.co.jp", "ymail.com"), (
        ("userunknown", _rx(r"this user doesn't have a \S+ account", r"mailbox not found")),
    )),
)

# Orange and La Poste (France) end each refusal with a label such as "OFR_506", "OFR005_505"
# or "LPN007_416"; the last three digits are the cause, as their postmaster pages list them.
# The label names the provider by itself.  Codes that only mean "try later" are left out.
_ORANGE_LABEL = re.compile(r"\b(?:ofr|lpn|ouk)[a-z]{0,3}\d{0,3}_(\d{3})\b", re.I)
ORANGE_CODES: dict[str, str] = {
    "101": "blocked", "102": "blocked", "103": "blocked", "104": "toomanyconn",
    "305": "securityerror", "401": "authfailure", "402": "securityerror",
    "403": "rejected", "405": "rejected", "415": "rejected", "421": "rejected",
    "416": "userunknown", "417": "mailboxfull", "420": "suspend", "426": "suspend",
    "505": "systemerror", "506": "spamdetected", "510": "blocked", "514": "mesgtoobig",
    "517": "authfailure", "630": "policyviolation", "999": "blocked",
}

_HOST_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,250}\.[A-Za-z]{2,24}")


def provider_of(hosts: str) -> str | None:
    """The provider whose host names appear in ``hosts`` (any text naming hosts/addresses)."""
    names = {m.group(0).lower().rstrip(".") for m in _HOST_TOKEN.finditer(hosts[:20000])}
    for name, suffixes, _rules in PROVIDERS:
        for host in names:
            if any(host == s or host.endswith("." + s) or host.endswith("@" + s)
                   for s in suffixes):
                return name
    return None


def provider_reason(hosts: str, text: str) -> str | None:
    """The reason a known provider's own wording gives, or ``None``."""
    label = _ORANGE_LABEL.search(text[:8000])
    if label and label.group(1) in ORANGE_CODES:
        return ORANGE_CODES[label.group(1)]
    provider = provider_of(hosts)
    if provider is None:
        return None
    for name, _suffixes, rules in PROVIDERS:
        if name != provider:
            continue
        for reason, pattern in rules:
            if pattern.search(text[:8000]):
                return reason
    return None
