"""Auto-replies (out-of-office, vacation, autoresponders) and the return date they state.

Which signals are trustworthy:

* RFC 3834 §5: ``Auto-Submitted: auto-replied`` is the responder saying so.  ``auto-generated``
  only says "a machine wrote this" (notifications, challenge-response, receipts), so it counts
  as an out-of-office only together with out-of-office wording.
* ``X-Autoreply``, ``X-Autorespond``, ``X-Autoresponder``, ``X-Vacation`` and
  ``Precedence: auto_reply`` are set by vacation programs (Yahoo, cPanel, Zimbra ...).
* Microsoft: Exchange writes ``Automatic reply:`` (localised) subjects and stamps its OOF
  replies with ``X-MS-Exchange-Inbox-Rules-Loop`` / ``X-Auto-Response-Suppress`` - but the
  latter is also on ordinary Outlook mail (and on ours), so those headers only *support*
  other evidence.  ``Precedence: bulk/list/junk`` alone marks list mail, not a vacation.
* A person may write "I was out of office" in a reply: body wording alone never makes a
  message an auto-reply.

Return dates are read with per-language rules (month and weekday tables, cue words such as
"back on", "zurück am", "de retour le", "regreso el", "until"), and relative expressions
("back Monday", "next week", "tomorrow") are resolved against the message's Date.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

from cadence.mail.inbound import InboundMessage

# --- detection -------------------------------------------------------------------------------

_AUTO_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponder", "x-vacation",
                 "x-autoreply-from", "x-mail-autoreply", "x-cr-autoreply")

# Subject prefixes only automation writes (the word "automatic"/"auto" plus "reply").
_SUBJECT_AUTOMATIC = re.compile(
    r"^\s*(?:\[[^\]]{0,40}\]\s*)?(?:"
    r"automatic reply|auto[- ]?reply|auto[- ]?response|autosvar|automatisch(?:e)? "
    r"(?:antwort|antwoord|beantwoording)|r[ée]ponse automatique|respuesta autom[aá]tica|"
    r"resposta autom[aá]tica|risposta automatica|automaattinen vastaus|"
    r"automatyczna odpowied[zź]|otomatik yan[ıi]t|out of (?:the )?office auto ?reply|"
    r"abwesenheitsnotiz|abwesenheitsmeldung|autoreply|autoresponder|r[ée]ponse d'absence|"
    r"message d'absence|vacation reply|away message)",
    re.I,
)
# Subject wording that is out-of-office but a person could also type.
_SUBJECT_ABSENCE = re.compile(
    r"(?:^|[\s:\[(])(?:out of (?:the )?office|ooo\b|on (?:vacation|holiday|leave)|vacation|"
    r"away from (?:the )?office|abwesen|nicht im b[üu]ro|urlaub|au[sß]er haus|"
    r"absen(?:ce|t|te)\b|en cong[ée]s?|en vacances|hors du bureau|"
    r"fuera de (?:la )?oficina|ausen(?:te|cia)|de vacaciones|fora do escrit[óo]rio|"
    r"de f[ée]rias|fuori (?:sede|ufficio)|in ferie|assen(?:te|za)|afwezig|niet aanwezig|"
    r"met vakantie|buiten kantoor|fuera del despacho)",
    re.I,
)
_BODY_ABSENCE = re.compile(
    r"out of (?:the )?office|away from (?:the |my )?(?:office|desk|e-?mail)|on (?:annual )?"
    r"(?:vacation|holiday|leave|sick leave|parental leave|maternity leave|paternity leave)|"
    r"(?:limited|no) access to (?:my )?e-?mail|currently (?:away|travel+ing|unavailable|out)|"
    r"i am (?:away|out|travel+ing)|i'?m (?:away|out|travel+ing)|will be (?:back|out|away)|"
    r"(?:automatic|automated|auto)[ -]?(?:reply|response|message|notification)|"
    r"abwesen|nicht im b[üu]ro|im urlaub|au[sß]er haus|keinen zugriff|"
    r"absente?\b|en cong[ée]|en vacances|hors du bureau|de retour le|"
    r"fuera de (?:la )?oficina|ausente|de vacaciones|estar[ée] fuera|"
    r"fora do escrit[óo]rio|de f[ée]rias|estarei ausente|"
    r"fuori (?:sede|ufficio)|in ferie|assente|sar[òo] (?:fuori|assente)|"
    r"afwezig|niet aanwezig|met vakantie|buiten kantoor|ben ik (?:weer|terug)|"
    # autoresponder acknowledgements ("thank you for your e-mail, we will reply ...")
    r"thank you for (?:your|you) (?:e-?mail|message)|(?:will|shall) (?:endeavou?r to |try to )?"
    r"(?:reply|respond|get back to you)(?: to you)? (?:as soon as|shortly|within)",
    re.I,
)


@dataclass(frozen=True)
class AutoReplyVerdict:
    is_auto_reply: bool
    machine_made: bool  # RFC 3834 auto-generated etc. (not a person) even if not a vacation


def _is_notice_subject(subject: str) -> bool:
    rest = _SUBJECT_ABSENCE.sub(" ", subject, count=1)
    rest = re.sub(r"\b(?:re|aw|sv|antw|fw|fwd|wg|tr|rv)\s*:.*$", " ", rest, flags=re.I | re.S)
    words = re.findall(r"[^\W\d_]{2,}", rest)
    return len(words) <= 3 and "?" not in rest


def detect_auto_reply(view: InboundMessage, body: str) -> AutoReplyVerdict:
    auto_submitted = (view.get("auto-submitted") or "").strip().lower()
    precedence = (view.get("precedence") or "").strip().lower()
    x_precedence = (view.get("x-precedence") or "").strip().lower()
    subject = view.subject
    head = body[:3000]

    strong = auto_submitted.startswith("auto-replied") or precedence == "auto_reply" or (
        x_precedence == "auto_reply"
    )
    for name in _AUTO_HEADERS:
        value = (view.get(name) or "").strip().lower()
        if view.get(name) is not None and value not in ("no", "false", "0"):
            strong = True
    if strong:
        return AutoReplyVerdict(True, True)

    # RFC 3834 §3.3: responders send with a null return path; people never do
    null_sender = (view.get("return-path") or "").strip() == "<>"
    generated = (bool(auto_submitted) and auto_submitted != "no") or null_sender
    supporting = generated or bool(
        view.get("x-ms-exchange-inbox-rules-loop") is not None
        or view.get("x-auto-response-suppress") is not None
        or precedence in ("bulk", "junk", "list")
        or (view.get("return-path") or "").strip() == "<>"
    )
    human_subject = re.match(
        r"\s*(?:re|aw|sv|antw|rif|r|fw|fwd|wg|tr|rv|doorst)\s*:", subject, re.I
    )
    automatic_subject = bool(_SUBJECT_AUTOMATIC.search(subject))
    absence_subject = not human_subject and bool(_SUBJECT_ABSENCE.search(subject))
    absence_body = bool(_BODY_ABSENCE.search(head))

    if automatic_subject and (absence_body or supporting or not human_subject):
        return AutoReplyVerdict(True, True)
    if re.match(r"\s*auto\s*:", subject, re.I) and (absence_body or supporting):
        return AutoReplyVerdict(True, True)  # "Auto:" alone could be a person's topic
    # Without any header evidence, the subject must be the notice itself ("Out of Office",
    # "Absence: Re: ...") - not a person's sentence ("Out of office next week, can we move?").
    notice_subject = absence_subject and _is_notice_subject(subject)
    if absence_subject and (supporting or (absence_body and notice_subject)):
        return AutoReplyVerdict(True, True)
    if supporting and generated and absence_body:
        return AutoReplyVerdict(True, True)
    return AutoReplyVerdict(False, generated)


# --- return dates ----------------------------------------------------------------------------


def _fold(text: str) -> str:
    """Lower-case and strip accents so tables need one spelling per word."""
    text = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in text if not unicodedata.combining(c))


MONTHS: dict[str, int] = {}
for _num, _names in enumerate([
    "january jan januar janvier enero janeiro gennaio januari jänner janner",
    "february feb februar fevrier febrero fevereiro febbraio februari",
    "march mar marz maerz mars marzo marco maart mrt",
    "april apr avril abril aprile",
    "may mai mayo maio maggio mei",
    "june jun juni juin junio junho giugno",
    "july jul juli juillet julio julho luglio",
    "august aug aout agosto augustus",
    "september sep sept septembre septiembre setiembre setembro settembre",
    "october oct oktober octobre octubre outubro ottobre okt",
    "november nov novembre noviembre novembro",
    "december dec dezember decembre diciembre dezembro dicembre dez",
], start=1):
    for _name in _names.split():
        MONTHS[_name] = _num

WEEKDAYS: dict[str, int] = {}
for _num, _names in enumerate([
    "monday mon montag lundi lunes segunda segunda-feira lunedi maandag",
    "tuesday tue tues dienstag mardi martes terca terca-feira martedi dinsdag",
    "wednesday wed mittwoch mercredi miercoles quarta quarta-feira mercoledi woensdag",
    "thursday thu thurs donnerstag jeudi jueves quinta quinta-feira giovedi donderdag",
    "friday fri freitag vendredi viernes sexta sexta-feira venerdi vrijdag",
    "saturday sat samstag sonnabend samedi sabado sabato zaterdag",
    "sunday sun sonntag dimanche domingo domenica zondag",
]):
    for _name in _names.split():
        WEEKDAYS[_name] = _num

_MONTH_ALT = "|".join(sorted((re.escape(m) for m in MONTHS), key=len, reverse=True))
_WEEKDAY_ALT = "|".join(sorted((re.escape(w) for w in WEEKDAYS), key=len, reverse=True))

# Cue words (accent-folded, lower-case).  RETURN cues name the day the person is back;
# UNTIL cues name the last day of absence (the engine resumes the next business day).
_RETURN_CUES = (
    r"back (?:in (?:the )?office |at (?:my desk|work) |in the office )?(?:on |by |from )?|"
    r"return(?:ing)? (?:to (?:the |my )?(?:office|desk|work) )?(?:on |by )?|"
    r"available (?:again )?(?:on |from )?|in the office (?:again )?(?:on |from )?|"
    r"returns? (?:on )?|reachable (?:again )?(?:on |from )?|"
    r"zuruck (?:am |ab |bis )?|wieder (?:im buro |erreichbar |da |verfugbar |zuruck )?(?:am |ab )?|"
    r"ab dem |ab |"
    r"de retour (?:au bureau )?(?:le |a partir du |des le )?|retour (?:prevu )?(?:le )?|"
    r"a partir du |des le |"
    r"regres(?:o|are|aremos)? (?:a la oficina )?(?:el )?|vuelvo (?:el )?|volvere (?:el )?|"
    r"de vuelta (?:el )?|a partir del? |reincorporo (?:el )?|"
    r"retorno (?:em |no dia |a )?|regresso (?:em |a )?|volto (?:em |a |no dia )?|"
    r"voltarei (?:em |a |no dia )?|"
    r"rientro (?:il |in ufficio il )?|rientrero (?:il )?|tornero (?:il )?|di ritorno (?:il )?|"
    r"dal |"
    r"terug (?:op |vanaf )?|weer (?:aanwezig |op kantoor |bereikbaar )?(?:op |vanaf )?|vanaf "
)
_UNTIL_CUES = (
    r"until |till |til |through |thru |to |- |– |"
    r"bis (?:zum |einschliesslich |einschl\. |inkl\. )?|"
    r"jusqu'?au |jusqu'?a |au |"
    r"hasta (?:el )?|al |"
    r"ate (?:o dia |dia |ao dia )?|a |"
    r"fino al |fino a |al |"
    r"tot en met |tot |t/m "
)

_YEAR = r"(?:\s*,?\s*(?:de |del )?(\d{4}|'\d{2}))?"
# 14 March 2024 / 14. März / 14 de marzo de 2024 / 14th of March / le 14 mars
_DMY_TEXT = (
    rf"(?<!\d)(\d{{1,2}})(?:st|nd|rd|th|er|eme|o|º)?\.?\s*(?:of |de |di )?({_MONTH_ALT})\b\.?"
    rf"{_YEAR}"
)
# March 14(th), 2024
_MDY_TEXT = rf"\b({_MONTH_ALT})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?(?!\d){_YEAR}"
_NUMERIC = r"(\d{1,4})([./-])(\d{1,2})(?:\2(\d{2,4}))?(?!\d)"


@dataclass(frozen=True)
class _Found:
    value: date
    cue: str  # "return", "until", "none"
    pos: int
    weak: bool = False  # a bare "1.5" or "3/4": a date only when a cue word stands before it


def _year_for(day: int, month: int, year: int | None, ref: date) -> date | None:
    try:
        if year is not None:
            if year < 100:
                year += 2000
            return date(year, month, day)
        candidate = date(ref.year, month, day)
        if candidate < ref - timedelta(days=14):
            candidate = date(ref.year + 1, month, day)
        return candidate
    except ValueError:
        return None


def _next_weekday(ref: date, weekday: int, *, strictly_after: bool = True) -> date:
    delta = (weekday - ref.weekday()) % 7
    if delta == 0 and strictly_after:
        delta = 7
    return ref + timedelta(days=delta)


def _parse_dates(text: str, ref: date, us_order: bool) -> list[_Found]:
    """Every date the text states, with the cue that precedes it."""
    found: list[_Found] = []
    cue_re = re.compile(rf"(?:{_RETURN_CUES})$")
    until_re = re.compile(rf"(?:{_UNTIL_CUES})$")

    def cue_before(pos: int) -> str:
        before = text[max(0, pos - 60): pos]
        # allow a weekday (and "the") between cue and date: "back on Monday, 14 March"
        before = re.sub(rf"(?:(?:{_WEEKDAY_ALT})\.?,?\s*(?:the\s+|den\s+|le\s+|el\s+|il\s+)?)$", "",
                        before)
        if cue_re.search(before):
            return "return"
        if until_re.search(before):
            return "until"
        return "none"

    for match in re.finditer(_DMY_TEXT, text):
        year = int(match.group(3).strip("'")) if match.group(3) else None
        value = _year_for(int(match.group(1)), MONTHS[match.group(2)], year, ref)
        if value:
            found.append(_Found(value, cue_before(match.start()), match.start()))
    for match in re.finditer(_MDY_TEXT, text):
        year = int(match.group(3).strip("'")) if match.group(3) else None
        value = _year_for(int(match.group(2)), MONTHS[match.group(1)], year, ref)
        if value and not any(f.pos <= match.start() < f.pos + 20 for f in found):
            found.append(_Found(value, cue_before(match.start()), match.start()))
    for match in re.finditer(_NUMERIC, text):
        a, sep, b, c = match.group(1), match.group(2), match.group(3), match.group(4)
        if text[max(0, match.start() - 1): match.start()].isdigit():
            continue
        value = None
        if len(a) == 4:  # ISO 2024-03-14
            if sep == "-":
                try:
                    value = date(int(a), int(b), int(c)) if c else None
                except ValueError:
                    value = None
        else:
            year = int(c) if c else None
            first, second = int(a), int(b)
            if sep == "/" and us_order and first <= 12:
                value = _year_for(second, first, year, ref)
            if value is None:
                value = _year_for(first, second, year, ref)
            if value is None and first <= 12:
                value = _year_for(second, first, year, ref)
        if value:
            # "1.5" or "3/4" without a year may be anything; "14.03." (German) is a date
            weak = c is None and text[match.end(): match.end() + 1] != "."
            found.append(_Found(value, cue_before(match.start()), match.start(), weak))
    # relative expressions
    rel_cue = rf"(?:{_RETURN_CUES}|{_UNTIL_CUES})"
    for match in re.finditer(
        rf"({rel_cue})(?:next |this |coming |naechsten |nachsten |kommenden |prochain |"
        rf"el proximo |el |la proxima |na proxima |na |il prossimo |il |volgende |aanstaande |)"
        rf"({_WEEKDAY_ALT})\b(?! ?\d)(?:\s+(?:prochain|prossimo|que vem|próximo|proximo))?",
        text,
    ):
        cue = "return" if cue_re.search(match.group(1)) else "until"
        if match.group(1).strip() in ("a", "al", "au", "to", "-", "–", "dal", "ab"):
            cue = "return" if match.group(1).strip() in ("ab", "dal") else "until"
        found.append(_Found(_next_weekday(ref, WEEKDAYS[match.group(2)]), cue, match.start()))
    for match in re.finditer(
        rf"({rel_cue})(next week|nachste woche|naechste woche|kommende woche|la semaine prochaine|"
        rf"la semana que viene|la proxima semana|a proxima semana|na proxima semana|"
        rf"la prossima settimana|volgende week|tomorrow|morgen|demain|manana|amanha|domani)\b",
        text,
    ):
        word = match.group(2)
        cue = "return" if cue_re.search(match.group(1)) else "until"
        if "week" in word or "woche" in word or "semaine" in word or "semana" in word or (
            "settimana" in word
        ):
            value = _next_weekday(ref, 0)
        else:
            value = ref + timedelta(days=1)
        found.append(_Found(value, cue, match.start()))
    # German puts the cue after the day: "am Montag wieder da", "ab Montag wieder im Büro"
    for match in re.finditer(rf"\b(?:am|ab)\s+({_WEEKDAY_ALT})\b[^.\n]{{0,30}}\b(?:wieder|zuruck)",
                             text):
        found.append(_Found(_next_weekday(ref, WEEKDAYS[match.group(1)]), "return", match.start()))
    return found


def return_date(text: str, ref: date, *, us_order: bool = True) -> date | None:
    """The day the sender says they are back (or the last day away when only that is said)."""
    folded = _fold(text[:4000])
    folded = re.sub(r"[ \t\u00a0]+", " ", folded)
    found = [f for f in _parse_dates(folded, ref, us_order)
             if ref - timedelta(days=1) <= f.value <= ref + timedelta(days=400)
             and not (f.weak and f.cue == "none")]
    if not found:
        return None
    for cue in ("return", "until"):
        candidates = [f for f in found if f.cue == cue]
        if candidates:
            if cue == "return":
                return min(candidates, key=lambda f: f.pos).value
            return max(candidates, key=lambda f: f.value).value
    if len(found) == 1:
        return found[0].value
    return None
