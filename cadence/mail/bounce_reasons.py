"""Why a delivery failed, in sisimai's vocabulary, from the server's words and status codes.

The reason is decided from the diagnostic text first (servers' own wording is more specific
than the status they pick), then from the enhanced status code (RFC 3463 subject/detail),
then from the basic SMTP reply code.  Rules are ordered: the first that matches wins, so the
more specific wordings come before the generic ones.

Hard bounce (the address or domain is gone; never mail it again): ``userunknown``,
``hostunknown``, ``hasmoved`` and ``notaccept`` - and only when the failure is permanent
(a 5xx reply or a 5.x.x status, or no code at all on a final failure).
"""

from __future__ import annotations

import re

from cadence.mail.bounce_context import BEFORE_DATA, failed_command

HARD_REASONS = frozenset({"userunknown", "hostunknown", "hasmoved", "notaccept"})


def _rx(*parts: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in parts), re.I)


# (reason, pattern) in priority order.  Patterns are plain alternations of literal wordings
# with bounded gaps ([^\n]{0,40}) so they cannot backtrack catastrophically.
TEXT_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("authfailure", _rx(
        r"\bspf\b[^\n]{0,60}\b(?:fail|check|record|polic|validation|hard ?fail)",
        r"sender policy framework", r"\bdmarc\b", r"\bdkim\b[^\n]{0,40}(?:fail|invalid)",
        r"authentication information", r"fails? to pass (?:authentication|spf|dkim|dmarc)",
        r"5\.7\.2[36]\b", r"5\.7\.509", r"unauthenticated (?:e-?mail|mail|sender)",
        r"not pass (?:authentication|dmarc|spf)", r"authentication checks? (?:failed|did not)",
        r"failed (?:spf|dkim|dmarc)",
    )),
    ("requireptr", _rx(
        r"reverse (?:dns|lookup|mapping)", r"\bptr\b[^\n]{0,30}(?:record|lookup|fail|missing)",
        r"no (?:ptr|rdns)", r"\brdns\b", r"cannot find your hostname", r"5\.7\.25",
        r"client host without reverse", r"(?:ip|address) has no (?:ptr|name)",
        r"hostname (?:does not|doesn't) resolve", r"unresolvable (?:ip|address|client)",
        r"not resolve to your ip", r"reverse (?:hostname|name)", r"ip name lookup failed",
    )),
    ("norelaying", _rx(
        r"relay(?:ing)? (?:access )?(?:denied|not permitted|prohibited|not allowed)",
        r"not (?:permitted|allowed|authori[sz]ed) to relay", r"unable to relay",
        r"we do not relay", r"no relaying", r"relay not permitted", r"cannot relay",
        r"relaying (?:denied|disallowed|mail to .{0,40} is not allowed)", r"5\.7\.54",
        r"not a gateway", r"relay access", r"as a relay",
    )),
    ("notcompliantrfc", _rx(
        r"rfc ?(?:2822|5322)", r"\brfc ?822\b(?!;)", r"not (?:rfc|standards?)[ -]compliant",
        r"(?:duplicate|multiple) (?:header|from|message-id|date|subject)",
        r"multiple addresses in from",
        r"message (?:is )?not (?:rfc|standard) compliant", r"malformed (?:header|message)",
    )),
    ("hasmoved", _rx(
        r"has (?:been )?moved", r"address (?:has )?changed", r"no longer (?:at|with) ",
        r"5\.1\.6\b",
    )),
    ("notaccept", _rx(
        r"does not accept (?:e-?)?mail", r"doesn't accept (?:e-?)?mail",
        r"not accept(?:ing)? (?:any )?(?:e-?)?mail(?:\s*[.;)]|\s*$| for (?:this|the) domain)",
        r"null mx", r"couldn't find a mail exchanger or ip address", r"no mx found for",
        r"indicated no smtp service", r"not accepting network messages",
        r"5\.7\.27\b", r"domain (?:does not|doesn't) receive (?:e-?)?mail",
        r"accepts no mail", r"mx (?:record )?(?:points to|is) (?:localhost|0\.0\.0\.0|\.)",
    )),
    ("suspend", _rx(
        r"(?:account|mailbox|user|address|recipient)[^\n]{0,30}(?:is |has been |was )?"
        r"(?:disabled|suspended|deactivated|inactive|frozen|locked|closed)",
        r"(?:disabled|suspended|inactive|deactivated|locked|frozen) "
        r"(?:account|mailbox|user|recipient)",
        r"account (?:is )?(?:not active|unavailable)", r"mailbox (?:is )?not active",
        r"due to (?:extended )?inactivity", r"temporarily (?:disabled|deactivated)",
        r"no longer (?:in use|active|monitored)", r"5\.7\.13\b", r"has been terminated",
        r"temporar(?:il)?y locked", r"not currently active",
    )),
    ("mailboxfull", _rx(
        r"mail ?box[^\n]{0,20}(?:is )?(?:full|over ?quota|exceeded|too large|size limit)",
        r"over ?quota", r"quota (?:exceeded|full|limit)",
        r"exceeds? (?:the )?(?:storage|quota|disk)",
        r"(?:storage|disk) (?:quota|space|allocation) (?:exceeded|full)",
        r"insufficient (?:disk space|storage) (?:in|for) (?:the )?(?:mailbox|user|recipient)",
        r"user(?:'s)? (?:mailbox|quota|disk)[^\n]{0,20}(?:full|exceeded)",
        r"exceeded (?:storage|the (?:storage|mailbox|quota))", r"full mailbox", r"is full\b",
        r"mailfolder is full", r"too many messages (?:on the server|in (?:the |this )?mailbox)",
        r"mailbox exceeds", r"not enough (?:space|storage)", r"5\.2\.2\b",
        r"mailbox (?:quota|size) ", r"recipient's mailbox is full",
        r"boite (?:aux lettres )?pleine",
    )),
    ("mesgtoobig", _rx(
        r"message (?:is )?too (?:large|big)", r"(?:message|mail) size (?:exceeds|limit|too)",
        r"exceeds? (?:the )?(?:maximum|fixed maximum|size limit|message size)",
        r"size (?:of the message |of your message )?exceeds", r"too large for", r"5\.3\.4\b",
        r"max(?:imum)? message size (?:exceeded|reached)",
        r"message length exceeds",
    )),
    ("contenterror", _rx(r"headers? too (?:large|long|many)", r"invalid (?:mime|content)")),
    ("exceedlimit", _rx(r"5\.2\.3\b", r"exceeds? (?:administrative|recipient) limit")),
    ("spamdetected", _rx(
        r"blacklisted (?:url|link|domain in)", r"\buribl\b", r"\bsurbl\b",
        r"\bspam\b", r"junk (?:e-?)?mail", r"\bu\.?c\.?e\b", r"bulk (?:e-?)?mail",
        r"unsolicited", r"content (?:was )?(?:identified|classified|flagged|rejected)",
        r"message (?:content )?(?:rejected|refused|blocked) (?:as|due to|because)",
        r"considered (?:as )?(?:spam|junk)", r"scored? (?:too high|high)", r"\bphish",
    )),
    ("securityerror", _rx(
        r"authentication (?:required|failed|unsuccessful)",
        r"auth(?:entication)? (?:credentials )?invalid",
        r"invalid credentials", r"virus (?:detected|found)", r"contains? (?:a )?virus",
        r"infected (?:with|by)",
        r"must (?:use|issue) (?:a )?starttls", r"tls (?:is )?required", r"encryption required",
        r"not authenticated", r"sender (?:is )?not authenticated",
    )),
    ("badreputation", _rx(r"(?:poor|low|bad) (?:ip |sender |domain )?reputation",
                          r"reputation (?:of|is too low)")),
    ("blocked", _rx(
        r"\bblock(?:ed|ing|list)\b[^\n]{0,40}(?:ip|address|host|server|client|your|network)",
        r"(?:\bip\b|ip address|host|client|server|network)[^\n]{0,40}"
        r"(?:blocked|blacklisted|block ?listed|banned|listed (?:in|on|at)|rejected)",
        r"black ?list", r"block ?list", r"\bdnsbl\b", r"\brbl\b", r"spamhaus", r"spamcop",
        r"sorbs", r"barracuda ?central", r"listed (?:in|on|at|by)", r"client host rejected",
        r"connection (?:refused|rejected|dropped)", r"access denied", r"refused to talk",
        r"not allowed to (?:connect|send)", r"5\.7\.606\b", r"\bbanned\b",
    )),
    ("toomanyconn", _rx(
        r"too many (?:connections|concurrent|simultaneous|sessions|smtp sessions)",
        r"connection (?:rate|limit)", r"too many (?:errors|recipients|messages)",
        r"exceed(?:ed|s)? (?:the )?(?:connection|rate|recipient|sending) limit",
        r"rate[ -]limit", r"throttl", r"frequency limit",
    )),
    ("policyviolation", _rx(
        r"polic(?:y|ies)", r"prohibited", r"not (?:allowed|permitted) (?:by|under)",
        r"attachment[^\n]{0,40}(?:not allowed|blocked|forbidden|prohibited|unacceptable)",
        r"(?:forbidden|unacceptable|banned) (?:attachment|content|file)",
        r"5\.7\.7\b", r"5\.7\.9\b", r"content filter", r"violation",
        r"not accepting (?:e-?)?mail with (?:attachments|embedded images)",
    )),
    ("hostunknown", _rx(
        r"host (?:or domain name )?(?:not found|unknown)", r"unknown host",
        r"domain (?:not found|unknown)",
        r"no such (?:domain|host)", r"unrouteable (?:mail )?domain", r"unrouteable address",
        r"host \S{1,100} not found", r"bad destination system address",
        r"domain (?:is )?(?:not reachable|unreachable)", r"unroutable (?:mail )?domain",
        r"domain (?:name )?(?:does not exist|doesn't exist|is not valid|invalid|not exist)",
        r"name (?:service|server) error", r"no (?:mx|dns|a) (?:or a |record|records|host)",
        r"mx (?:lookup|record)[^\n]{0,30}(?:fail|not found|missing)", r"nxdomain",
        r"dns (?:lookup|resolution) (?:failed|error)", r"could not resolve", r"unknown domain",
        r"invalid domain", r"host name lookup failure", r"name or service not known",
        r"no such domain", r"relevant mx records point to non-existent",
        r"5\.1\.2\b", r"5\.4\.4\b", r"hostname not known", r"domain is not configured",
        r"no route to (?:domain|host) (?:found|known)",
    )),
    ("userunknown", _rx(
        r"user(?:name)? (?:is )?(?:unknown|not found|not known|does not exist|doesn't exist)",
        r"unknown (?:user|recipient|local[ -]?part|mailbox|address|account|alias)",
        r"no such (?:user|mailbox|recipient|address|account|person|local user|alias)",
        r"(?:mailbox|recipient|address|account|user|e-?mail|alias)[^\n]{0,50}(?:does not exist|"
        r"doesn't exist|not exist|not found|unknown|invalid|is not valid|not valid|unavailable|"
        r"not available|nonexistent|non-existent|doesn't have|does not have|not listed|"
        r"no longer (?:valid|available|exists?)|disallowed|not recognized|unrecognized)",
        r"(?:invalid|bad|illegal|unknown|nonexistent|non-existent) (?:recipient|mailbox|user|"
        r"address|account|e-?mail address|destination)",
        r"recipient address rejected: access denied",
        r"not a (?:valid|known) (?:user|mailbox|recipient)",
        r"no mailbox", r"mailbox not (?:found|available)", r"user not local",
        r"not our customer", r"undeliverable address",
        # qmail: the recipient's domain (or address) is not one this server accepts mail for
        r"(?:domain|user) isn't in my list of allowed rcpthosts",
        r"does not have an account", r"no account",
        r"couldn't be found", r"could not be found", r"not a known user",
        r"5\.1\.1\b", r"5\.1\.3\b", r"4\.1\.1\b",
        r"rcpt to[^\n]{0,20}(?:unknown|invalid)",
        r"(?:invalid|unknown) (?:final delivery )?userid", r"utilisateur inconnu", r"unbekannt",
        r"desconocido",
    )),
    ("filtered", _rx(
        r"not accepting (?:e-?)?mail(?! with)",
        r"(?:recipient|user) has (?:rejected|refused|blocked|"
        r"restricted)", r"(?:delivery|mail) (?:not authori[sz]ed|refused|rejected) by",
        r"not (?:accepting|receiving) (?:messages|e-?mails?) from",
        r"restricted access", r"only accepts? (?:mail|messages) from",
    )),
    ("rejected", _rx(
        r"sender (?:address )?(?:rejected|denied|refused|blocked|unknown|invalid|verify failed)",
        r"(?:envelope )?sender[^\n]{0,40}(?:rejected|denied|refused|not allowed|invalid)",
        r"domain of sender[^\n]{0,40}(?:does not|not) (?:exist|resolve)",
        r"mail from[^\n]{0,40}(?:rejected|refused|invalid|denied)", r"5\.1\.[78]\b",
        r"sender verif",
    )),
    ("expired", _rx(
        r"(?:retry|delivery|queue)[^\n]{0,20}(?:time(?:out)?|period) (?:exceeded|expired)",
        r"message expired", r"expired",
        r"could not be delivered (?:for|within) [^\n]{0,20}(?:days|hours)",
        r"unable to deliver[^\n]{0,40}(?:days|hours)", r"giving up", r"gave up",
        r"too long in (?:the )?queue", r"no successful delivery", r"timed? out[^\n]{0,30}queue",
        r"has not been delivered[^\n]{0,60}(?:days|hours)", r"4\.4\.7\b", r"5\.4\.7\b",
        r"retry time not reached", r"in the queue too long", r"aborted after",
        r"(?:connection|operation|session)? ?timed? ?out", r"failed \d+ attempts",
        r"did not accept our requests to connect", r"failed for [^\n]{0,20}days",
    )),
    ("networkerror", _rx(
        r"connection (?:reset|closed|lost)", r"name server reply", r"dns query failed",
        r"network (?:error|unreachable)", r"no route to host", r"host unreachable",
        r"(?:mail|routing) loop", r"too many hops", r"loops? back to myself",
        r"could not connect", r"unable to connect", r"can't connect", r"lost connection",
        r"connection refused", r"temporary (?:dns|lookup) failure", r"dns (?:error|failure)",
    )),
    ("systemfull", _rx(r"insufficient system storage", r"(?:disk|system|spool) (?:is )?full",
                       r"out of (?:disk|storage) space", r"insufficient disk space",
                       r"4\.3\.1\b", r"5\.3\.1\b")),
    ("mailererror", _rx(r"mailer error", r"\bx-unix\b", r"command (?:died|failed|output)",
                        r"pipe to \|", r"procmail", r"exit (?:code|status) \d")),
    ("systemerror", _rx(
        r"system (?:error|failure|problem)", r"internal (?:server )?error", r"server error",
        r"configuration error", r"local error", r"temporary (?:local )?(?:problem|failure|error)",
        r"service (?:is )?(?:currently |temporarily )?(?:not available|unavailable)",
        r"resources temporarily unavailable",
        r"server (?:is )?(?:busy|unavailable)",
    )),
    ("syntaxerror", _rx(r"syntax error", r"command (?:not )?(?:unrecognized|recognized)",
                        r"command not implemented")),
]

_ORDER = [
    "authfailure", "requireptr", "norelaying", "notcompliantrfc", "hasmoved", "notaccept",
    "mailboxfull", "suspend", "mailererror", "hostunknown", "userunknown", "exceedlimit",
    "mesgtoobig", "contenterror",
    "badreputation", "spamdetected", "securityerror", "toomanyconn", "rejected", "blocked",
    "policyviolation", "filtered", "expired", "networkerror", "systemfull", "systemerror",
    "syntaxerror",
]
TEXT_RULES.sort(key=lambda rule: _ORDER.index(rule[0]))

# The sending host or network is on a block list: decisive even when the same reply also says
# "sender rejected" or mentions spam, so it is tried before those rules.
_LISTED = ("blocked", _rx(
    r"\bdnsbl\b", r"rbl\b", r"spamhaus", r"spamcop", r"sorbs", r"barracuda ?central",
    r"black ?list(?:ed)?\b(?! (?:url|link|domain in))", r"block ?list", r"listed (?:in|on|at|by)",
    r"client host (?:rejected|blocked)", r"open relay", r"invalid ip",
    r"messages from \d{1,3}(?:\.\d{1,3}){3}", r"not accepting connections",
))
TEXT_RULES.insert(next(i for i, rule in enumerate(TEXT_RULES) if rule[0] == "badreputation"),
                  _LISTED)

# The recipient's own settings refused the message: decisive over the status the server chose
# (a "5.1.1" beside "refused due to recipient preferences" does not mean the mailbox is gone).
# Specific causes that must outrank the generic wording around them: the recipient receiving
# too fast (Gmail, Yahoo), a refusal "for policy reasons", a DNS failure or a directory-server
# failure that made the message expire (the cause, not the consequence), and Microsoft's
# "Message expired, connection ..." where the refused connection is why it expired.
TEXT_RULES[0:0] = [
    ("speeding", _rx(r"receiving mail (?:at a rate|too quickly)",
                     r"rate that prevents additional messages")),
    ("policyviolation", _rx(r"(?:rejected|refused|not accepted) for policy reasons",
                            r"content presents a potential\b")),
    ("networkerror", _rx(r"dns query failed", r"querying the domain name system[^\n]{0,80}failed")),
    ("systemerror", _rx(r"unable to contact (?:the )?ldap server",
                        r"directory server (?:failure|unavailable|error)")),
    ("expired", _rx(r"message expired, (?:connection|remote server|host)")),
]
TEXT_RULES.insert(0, ("filtered", _rx(
    r"due to (?:the )?recipient(?:'s)? (?:preferences|settings|filter)",
    r"(?:recipient|user) (?:refuses|refused|declines|declined) to (?:receive|accept)",
    r"blocked by the recipient", r"user rejects? (?:your|this|the) (?:mail|message)",
)))

# Wordings so general that a specific status code should win over them.
GENERIC_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("blocked", _rx(r"access denied", r"blocked")),
    ("filtered", _rx(r"filter", r"permission denied")),
    ("toomanyconn", _rx(r"try (?:again )?later")),
    ("userunknown", _rx(r"no such", r"^[^\n]{0,80}\baddress rejected\b")),
    ("rejected", _rx(r"rejected", r"refused", r"denied", r"rejete")),
]

# Enhanced status subject.detail (RFC 3463 §3) -> reason, used when the words say nothing.
STATUS_RULES: dict[str, str] = {
    "1.1": "userunknown", "1.2": "hostunknown", "1.3": "userunknown", "1.4": "userunknown",
    "1.5": "userunknown", "1.6": "hasmoved", "1.7": "rejected", "1.8": "rejected",
    "1.10": "notaccept", "2.0": "filtered", "2.1": "suspend", "2.2": "mailboxfull",
    "2.3": "exceedlimit", "2.4": "systemerror", "3.0": "systemerror", "3.1": "systemfull",
    "3.2": "notaccept", "3.3": "systemerror", "3.4": "mesgtoobig", "3.5": "systemerror",
    "4.0": "networkerror", "4.1": "networkerror", "4.2": "networkerror", "4.3": "systemerror",
    "4.4": "hostunknown", "4.5": "networkerror", "4.6": "networkerror", "4.7": "expired",
    "5.0": "syntaxerror", "5.1": "syntaxerror", "5.2": "syntaxerror", "5.3": "toomanyconn",
    "5.4": "syntaxerror", "5.5": "syntaxerror", "6.0": "contenterror", "6.1": "contenterror",
    "6.2": "contenterror", "6.3": "contenterror", "6.4": "contenterror", "6.5": "contenterror",
    "7.0": "securityerror", "7.1": "securityerror", "7.2": "securityerror", "7.3": "securityerror",
    "7.4": "securityerror", "7.5": "securityerror", "7.6": "securityerror",
    "7.7": "policyviolation", "7.8": "securityerror", "7.9": "policyviolation",
    "7.13": "suspend", "7.25": "requireptr", "7.26": "authfailure", "7.27": "notaccept",
}


def _status_reason(status: str | None) -> str | None:
    if not status:
        return None
    parts = status.split(".")
    if len(parts) != 3:
        return None
    key = f"{parts[1]}.{parts[2]}"
    if key in STATUS_RULES:
        return STATUS_RULES[key]
    if parts[1] == "7":
        return "securityerror"
    return None


_CONTINUATION = re.compile(
    r"(?<=[A-Za-z,] )[245]\d\d[- ](?:[245]\.\d{1,3}\.\d{1,3}\s+)?(?=[A-Za-z])"
)


def reason_for(text: str, status: str | None, reply_code: str | None) -> str:
    """The sisimai-style reason for one failed recipient."""
    # "550-5.7.1 ... this 550-5.7.1 message is" -> one sentence the wordings can match
    text = _CONTINUATION.sub("", text[:4000])
    for reason, pattern in TEXT_RULES:
        if pattern.search(text):
            return reason
    # a specific status (not X.0.0) outranks generic words like "rejected"
    by_status = _status_reason(status)
    if by_status and status and not status[1:].startswith(".0.0"):
        return by_status
    for reason, pattern in GENERIC_RULES:
        if pattern.search(text):
            return reason
    if by_status:
        return by_status
    if reply_code:
        if reply_code in ("421", "450", "451"):
            return "blocked" if reply_code == "421" else "systemerror"
        if reply_code == "452":
            return "systemfull"
        if reply_code == "552":
            return "mailboxfull"
        if reply_code in ("550", "551", "553"):
            return "userunknown" if reply_code == "551" else "rejected"
        if reply_code == "554":
            return "rejected"
        if reply_code in ("500", "501", "502", "503", "504"):
            return "syntaxerror"
    return "undefined"


def refine_by_permanence(reason: str, status: str | None, reply_code: str | None) -> str:
    """A DNS answer that failed only temporarily is a network problem, not a missing host."""
    temporary = (status or "").startswith("4") or (
        not status and (reply_code or "").startswith("4")
    )
    if reason == "hostunknown" and temporary:
        return "networkerror"
    return reason


# The domain's name servers answered badly (SERVFAIL, a malformed reply, a timeout): the lookup
# failed, which says nothing about whether the domain exists (RFC 1035 §4.1.1 RCODE 2 vs 3).
_DNS_TROUBLE = re.compile(
    r"malformed or unexpected name server reply|\bservfail\b|dns server failure|"
    r"name server (?:timeout|timed out|not responding)|"
    r"temporary (?:dns|name (?:service|resolution)|lookup) (?:failure|error)",
    re.I,
)


def refine_by_phase(reason: str, text: str, status: str | None = None) -> str:
    """A failure at MAIL FROM is about the sender; at DATA the recipient existed already, so a
    "user unknown" said after DATA is the recipient's filter (as sisimai reads it)."""
    low = text.lower()
    if reason == "hostunknown" and _DNS_TROUBLE.search(text[:8000]):
        return "networkerror"
    if reason in ("userunknown", "hostunknown") and re.search(
        r"(?:after|in reply to|>>>) ?mail from|mail from:.{0,80}\n\s*<<<", low
    ):
        return "rejected"
    if reason in ("rejected", "undefined", "syntaxerror", "hostunknown") and re.search(
        r"after (?:ehlo|helo|initial connection|connect)|in reply to (?:ehlo|helo)\b|"
        r"smtp greeting|banner|my name was rejected", low
    ):
        # refused before any envelope was sent: the connecting host is blocked
        return "blocked"
    if reason == "rejected" and re.search(r"recipient (?:address )?rejected", low):
        return refine_user_unknown("userunknown", text, status)
    return refine_user_unknown(reason, text, status)


# Wordings that only the mailbox lookup itself produces: the server (or its directory) says
# the address is not there, whatever the stage the report names (or does not name).
_DEFINITE_USER_UNKNOWN = re.compile(
    r"|".join((
        # Exchange 2000/2003 NDR diagnostic code for an unknown recipient
        r"\(000c05a6\)",
        # Microsoft 365 directory lookup and its edge block of unknown recipients
        r"resolver\.adr\.recip(?:ient)? ?not ?found", r"recipient not found by smtp address lookup",
        r"recipient address rejected: access denied",
        # IMail and Lotus Domino / Notes local delivery
        r"invalid final delivery userid", r"^\s*unknown user: \S+@",
        r"not listed in (?:the )?(?:domino directory|public name (?:&|and) address book)",
        # Sendmail's local delivery agent
        r"mail\.local: unknown user",
        # La Poste / Orange label their unknown-recipient refusals ("..._416")
        r"\b(?:ofr|lpn)[a-z]{0,3}\d{0,3}_41[68]\b",
        # Yahoo's delivery error for a local part it has no account for
        r"delivery error: dd this user doesn't have",
        # Gmail's summary line above the remote server's answer
        r"because the address couldn't be found",
    )),
    re.I | re.M,
)


def _address_status(status: str | None) -> bool:
    """An addressing status about the destination mailbox (RFC 3463 §3.2): X.1.0, X.1.1, X.1.3,
    X.1.6 and the extended X.1.1x / X.1.3xx forms Microsoft uses for "recipient not found" -
    not X.1.2 (the host), X.1.4 (ambiguous), X.1.5 (valid) or X.1.7/X.1.8 (the sender)."""
    if not status:
        return False
    parts = status.split(".")
    return len(parts) == 3 and parts[1] == "1" and parts[2] not in ("2", "4", "5", "7", "8", "9")


def refine_user_unknown(reason: str, text: str, status: str | None) -> str:
    """A "user unknown" wording is a missing mailbox only when the server said so at the
    mailbox lookup: an address status (X.1.x) or a reply to RCPT TO.  Said after DATA, or with
    neither a status nor a stage to tie it to the lookup, it is the recipient's filter refusing
    the message (sisimai's ``filtered``: a soft failure - the address may well exist)."""
    if reason != "userunknown" or _address_status(status):
        return reason
    stage = failed_command(text)
    if stage is not None and stage in BEFORE_DATA:
        return reason
    if _DEFINITE_USER_UNKNOWN.search(text[:8000]):
        return reason
    return "filtered"


def is_hard(reason: str, status: str | None, reply_code: str | None) -> bool:
    """Hard for a gone address or domain.  A missing mailbox, a missing domain or a moved
    address stays gone even when the server chose a 4xx reply for it (the report that carries
    it is already a final failure); "does not accept mail" (null MX, RFC 7505) is hard only
    when it is not said to be temporary."""
    if reason not in HARD_REASONS:
        return False
    if reason != "notaccept":
        return True
    return not ((status and status.startswith("4")) or (reply_code and reply_code.startswith("4")))
