"""The new text of a reply: quoted history and recognisable signatures removed.

Works line by line on plain text (HTML is first reduced to text with the clients' quote
containers dropped, see :mod:`cadence.mail.html_text`).  The reply ends where the history
starts, which clients mark with one of:

* an attribution line, possibly wrapped over several lines: "On <date>, <name> wrote:",
  "Am <date> schrieb <name>:", "Le <date>, <name> a écrit :", "El <date>, <name> escribió:",
  "Em <date>, <name> escreveu:", "Il <date>, <name> ha scritto:", "Op <date> schreef <name>:",
  "<date> <name> <address>:" (Gmail in some locales), ...;
* a separator: "-----Original Message-----" and its translations, "Begin forwarded message:",
  "---------- Forwarded message ---------";
* an Outlook header block: "From: ... / Sent: ... / To: ... / Subject: ..." (and translations),
  often after a line of underscores;
* ``>`` quoting.

When the history comes first (the person answered below the quote), the reply is the text
that follows it.  A signature is cut at the RFC 3676 §4.3 "-- " delimiter, or at a mobile
client's "Sent from my ..." line.
"""

from __future__ import annotations

import re

from cadence.mail.html_text import html_to_text

MAX_LINES = 5000

_WROTE = (
    r"wrote|writes|sent|schrieb|geschrieben|a [ée]crit|escribi[óo]|escreveu|ha scritto|ha escrit|"
    r"scrisse|schreef|het volgende geschreven|skrev(?: f[øo]lgende)?|napisa[łl](?:a|\(a\))?|"
    r"pisze|написал[аи]?|написав|пише[т]?|kirjoitti|έγραψε|yazd[ıi]|[đd]ã viết|írta|"
    r"napsal[a]?|a scris|写道|작성|のメッセージ|wrote the following"
)
_WROTE_RE = re.compile(rf"(?:^|[\s,>)\]\"'])(?:{_WROTE})", re.I)
# the wrote-word near the end: "... wrote:", "... schrieb Name:", "... wrote ----"
_WROTE_END = re.compile(
    rf"(?:^|[\s,>)\]\"'])(?:{_WROTE})(?:\s+[^\n]{{0,100}}?)?\s*[:：]\s*-*\s*$|"
    rf"(?:^|[\s,>)\]\"'])(?:{_WROTE})\s*-*\s*$",
    re.I,
)
_ON = r"on|am|le|el|em|il|in data|op|den|p[åa]|w dniu|dnia|dne|el d[ií]a|at|в|vào|在"
_ATTRIBUTION_START = re.compile(rf"^\s*(?:>\s*)?(?:-{{2,}}\s*)?(?:{_ON})\s*\S", re.I)
_DATE_START = re.compile(
    r"^\s*(?:\d{4}[-/.]\s?\d{1,2}[-/.]\s?\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}|"
    r"\w{1,4}\.?,\s+\d{1,2}\s|\d{1,2}\s+\S+\s+\d{4}|\d{1,2}:\d{2}|"
    r"(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,?\s)",
    re.I,
)
# "<date> <name> <address>:" (Gmail in several locales)
_ENDS_WITH_ADDRESS = re.compile(
    r"(?:<\s*(?:mailto:)?[^<>\s]+@[^<>\s]+\s*>|\S+@\S+\.\w+)\s*>?\s*[:：]\s*$"
)
# Gmail's locale-neutral "2016-03-03 17:21 GMT+01:00 Name" line
_GMAIL_ISO = re.compile(r"^\s*\d{4}-\d{2}-\d{2} \d{1,2}:\d{2} GMT[+-]\d{2}:\d{2} \S.{0,100}$")
_SEPARATOR = re.compile(
    r"^\s*[-=_*]{2,}\s*(?:original message|ursprüngliche nachricht|originalnachricht|"
    r"message d'origine|message original|mensaje original|messaggio originale|"
    r"oorspronkelijk bericht|origineel bericht|mensagem original|originalmeddelande|"
    r"oprindelig meddelelse|opprinnelig melding|alkuperäinen viesti|forwarded message|"
    r"weitergeleitete nachricht|message transf[ée]r[ée]|mensaje reenviado|"
    r"messaggio inoltrato|doorgestuurd bericht|mensagem encaminhada|reply message|"
    r"original-nachricht|oryginalna wiadomość|исходное сообщение)\s*[-=_*]*\s*$",
    re.I,
)
_FORWARD_LINE = re.compile(
    r"^\s*(?:begin forwarded message|anfang der weitergeleiteten (?:nachricht|e-mail)|"
    r"d[ée]but du message r[ée]exp[ée]di[ée]|inicio del mensaje reenviado|"
    r"in(?:i|í)cio da mensagem reencaminhada|inizio messaggio inoltrato|"
    r"begin doorgestuurd bericht)\s*:?\s*$",
    re.I,
)
_HDR_FROM = re.compile(
    r"^\s*[*>]?\s*\*?(?:from|von|de|da|van|fr[åa]n|fra|od|от|lähettäjä|feladó|kimden|发件人|"
    r"寄件者|差出人|from \(sender\))\s*\*?\s*[:：]", re.I
)
_HDR_OTHER = re.compile(
    r"^\s*[*>]?\s*\*?(?:sent|date|to|cc|subject|gesendet|datum|an|betreff|envoy[ée]|[àa]|"
    r"objet|enviado(?: el)?|fecha|para|asunto|inviato|data|oggetto|verzonden|aan|onderwerp|"
    r"skickat|till|ämne|sendt|til|emne|wysłano|temat|do|отправлено|кому|тема|"
    r"lähetetty|vastaanottaja|aihe|reply-to|sujet|copie [àa]|message du|发送时间|收件人|主题|抄送|"
    r"日期|送信日時|宛先|件名)\s*\*?\s*[:：]",
    re.I,
)
_UNDERSCORES = re.compile(r"^\s*[_\-=]{8,}\s*$")
_MOBILE = re.compile(
    r"^\s*(?:sent from (?:my |mail for |yahoo|outlook|samsung|the |\w+ mobile)|"
    r"sent (?:via|using|with) |get outlook for |envoy[ée] (?:de|depuis) mon |"
    r"von meinem .{1,40} gesendet|gesendet von (?:meinem|mobil)|enviado desde mi |"
    r"enviado (?:do|de) meu |inviato da(?:l mio)? |verzonden (?:vanaf|met) mijn |"
    r"verstuurd vanaf mijn |skickat från min |sendt fra min |"
    r"sent from [\w .-]{1,40}(?:<[^>\s]{1,200}>)?\s*$)",
    re.I,
)
_SIG_DELIM = re.compile(r"^(?:-- ?|--)\s*$")
_SHORT_RULE = re.compile(r"^\s*_{2,}\s*$")
_INVISIBLE = re.compile(r"^[\s\u1427\u200b\u200c\u200d\ufeff\u00ad]*$")
_INLINE_ATTRIBUTION = re.compile(
    r"(?<=\S)[-\s]*\b(On (?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?|\d{1,2}[ /.-]|"
    r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]* \d)"
    r".{0,200}?(?:wrote|sent):?\s*)$"
)


def _joined(lines: list[str], start: int, span: int) -> str:
    return " ".join(line.strip() for line in lines[start: start + span])


def _attribution_length(lines: list[str], i: int) -> int:
    """How many lines an attribution ("On ... wrote:") starting at line ``i`` spans, or 0.

    An attribution names a date or an address, ends with the wrote-word (or with the
    address and a colon, Gmail-style), and may be wrapped over a few lines.
    """
    line = lines[i].strip()
    if not line or len(line) > 400:
        return 0
    if _GMAIL_ISO.match(line) and i + 1 < len(lines) and not lines[i + 1].strip():
        return 1
    lookahead = _joined(lines, i, 6)
    dated_start = bool(_DATE_START.match(line))
    if not (_WROTE_RE.search(lookahead) or (dated_start and "@" in lookahead)):
        return 0
    starts_like = bool(_ATTRIBUTION_START.match(line)) or dated_start
    if not (starts_like or _WROTE_RE.search(line) or ("@" in line and len(line) < 200
                                                      and not re.search(r"[.!?]\s*$", line))):
        return 0
    for span in range(1, 7):
        if i + span > len(lines):
            break
        last = lines[i + span - 1]
        if span > 1:
            if _is_quoted(last) and not re.match(r"^\s*>\s*(?:wrote|sent)?\s*:?\s*$", last):
                break
            # Only an "On <date> ..." opening may continue past a blank line; a line that merely
            # starts with a date or weekday ("Thursday 3pm works") is the reply itself.
            if not last.strip() and (
                not _ATTRIBUTION_START.match(line) or re.search(r"[.!?]\s*$", line)
            ):
                break
            if re.search(r"[.!?]\s*$", line) and not dated_start:
                break  # a finished sentence does not continue into an attribution
        text = _joined(lines, i, span)
        if len(text) > 450:
            break
        dated = _looks_dated(text)
        has_address = "@" in text
        if _WROTE_END.search(text) and (dated or has_address) and (
            starts_like or has_address or span <= 2
        ):
            return span
        if dated_start and has_address and dated and _ENDS_WITH_ADDRESS.search(text):
            return span
        if dated_start and has_address and dated and text.rstrip().endswith(">"):
            following = [x for x in lines[i + span: i + span + 3] if x.strip()]
            if following and re.match(r"^\s*[>|]", following[0]):
                return span
    return 0


_DATEISH = re.compile(
    r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|\d{1,2}:\d{2}|\b(?:19|20)\d{2}\b|"
    r"\b(?:jan|feb|m[aä]r|apr|ma[iy]|jun|jul|aug|sep|o[ck]t|nov|de[cz])[a-z]*\b",
    re.I,
)


def _looks_dated(text: str) -> bool:
    return bool(_DATEISH.search(text))


def _outlook_block(lines: list[str], i: int) -> bool:
    """A quoted header block: "From:" (or "Date:"/"Sent:") followed by more header lines."""
    first = lines[i]
    dated = re.match(r"^\s*\*?(?:date|sent|datum|gesendet)\s*\*?\s*:", first, re.I)
    if not (_HDR_FROM.match(first) or dated):
        return False
    others = 0
    for line in lines[i + 1: i + 8]:
        if _HDR_OTHER.match(line) or _HDR_FROM.match(line):
            others += 1
    if not _HDR_FROM.match(first):
        return others >= 1 and bool(lines[i + 1: i + 2]) and bool(_HDR_OTHER.match(lines[i + 1]))
    return others >= 2 or (others >= 1 and i > 0 and _UNDERSCORES.match(lines[i - 1]) is not None)


def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _history_start(lines: list[str]) -> tuple[int, int]:
    """(index where quoted history starts, number of header lines there) or (len, 0)."""
    for i, line in enumerate(lines):
        if _SEPARATOR.match(line) or _FORWARD_LINE.match(line):
            return i, 1
        if _UNDERSCORES.match(line) and i + 1 < len(lines) and (
            _outlook_block(lines, i + 1) or (i + 2 < len(lines) and _outlook_block(lines, i + 2))
        ):
            return i, 1
        if _outlook_block(lines, i):
            return i, 1
        span = _attribution_length(lines, i)
        if span:
            return i, span
        if _is_quoted(line):
            # a lone ">" line in the middle of text (">>> link <<<") is not a quote block
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            if line.strip().endswith("<<<") and nxt.strip() and not _is_quoted(nxt):
                continue
            return i, 0
    return len(lines), 0


def _cut_signature(lines: list[str]) -> list[str]:
    for i, line in enumerate(lines):
        if i == 0:
            continue
        if _SIG_DELIM.match(line) and len(lines) - i <= 25:
            return lines[:i]
        if _SHORT_RULE.match(line) and len(lines) - i <= 10:
            return lines[:i]
        if _MOBILE.match(line):
            return lines[:i]
    return lines


def _strip_trailing_debris(lines: list[str]) -> list[str]:
    """Separator rules, invisible tracking characters and a dangling "Label : date" line that a
    cut left at the end of the reply."""
    lines = _strip_blank_edges(lines)
    while lines and (
        _INVISIBLE.match(lines[-1])
        or re.fullmatch(r"\s*[-=_*~#+]{3,}\s*", lines[-1])
        or re.fullmatch(r"\s*[^\W\d_][\w ]{0,25}\s?[:：]\s*\d[\d/.: -]{4,30}\s*", lines[-1])
    ):
        lines = _strip_blank_edges(lines[:-1])
    return lines


def _split_inline_attribution(lines: list[str]) -> list[str]:
    """'reply On Wed, Apr 4, 2012 at 3:59 PM, bob wrote:' -> two lines."""
    out: list[str] = []
    for line in lines:
        if len(line) < 400 and ("wrote" in line or "sent:" in line):
            match = _INLINE_ATTRIBUTION.search(line)
            if match and match.start() > 0:
                before = line[: match.start()].rstrip(" -")
                out.append(before)
                out.append(match.group(1))
                continue
        out.append(line)
    return out


def _strip_blank_edges(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def _skip_history_header(rest: list[str]) -> list[str]:
    """After a leading separator: skip the quoted header block and the quote marks."""
    j = 0
    while j < len(rest) and not rest[j].strip():
        j += 1
    if j < len(rest) and (_HDR_FROM.match(rest[j]) or _HDR_OTHER.match(rest[j])):
        while j < len(rest) and rest[j].strip():
            j += 1
    while j < len(rest) and (not rest[j].strip() or _is_quoted(rest[j])):
        j += 1
    return rest[j:]


def extract_reply_text(text: str) -> str:
    """The new text at the top (or, under a leading quote, below the quote) of a reply."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")[:MAX_LINES]
    lines = [line[:2000] for line in lines]
    lines = _split_inline_attribution(lines)
    start, span = _history_start(lines)
    reply = _strip_blank_edges(lines[:start])
    if not reply and start < len(lines):
        # history first: the answer follows the quoted block
        tail = _skip_history_header(lines[start + max(span, 0):])
        end, _ = _history_start(tail)
        reply = _strip_blank_edges(tail[:end])
        if not reply and all(not line.strip() or _is_quoted(line) for line in lines):
            # nothing but a quote: that is all the person sent
            return "\n".join(_strip_blank_edges(lines)).strip()
    reply = _strip_trailing_debris(_cut_signature(reply))
    return "\n".join(line.rstrip() for line in reply)


def extract_reply_from_html(markup: str) -> str:
    return extract_reply_text(html_to_text(markup, drop_quotes=True))
