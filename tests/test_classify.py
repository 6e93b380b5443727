"""Inbound-mail classification: bounces, auto-replies, reply text.

Every message here is written for these tests (the shared corpus is only read by
bench/classify_accuracy.py).
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import pytest

from cadence.mail.classify import MalformedMessageError, classify_message
from cadence.mail.reply_text import extract_reply_from_html, extract_reply_text

DATA = Path(__file__).parent / "data" / "classify"


def msg(headers: str, body: str) -> bytes:
    return (headers.strip("\n") + "\n\n" + body.lstrip("\n")).encode("utf-8")


# --- bounces ---------------------------------------------------------------------------------


def test_postfix_dsn_names_recipient_status_reason_and_original_id() -> None:
    result = classify_message((DATA / "postfix_dsn.eml").read_bytes())
    assert result.kind == "bounce"
    assert len(result.bounces) == 1
    bounce = result.bounces[0]
    assert bounce.recipient == "jane.doe@prospect.example"
    assert bounce.status == "5.1.1"
    assert bounce.reply_code == "550"
    assert bounce.reason == "userunknown"
    assert bounce.hard is True
    assert bounce.action == "failed"
    # the engine matches the bounce to what we sent through the returned original
    assert "<cadence.step1.42@sender.example>" in result.in_reply_to
    # the bounce's own Message-ID is not the original's
    assert "<20250304091502.AB12CD34@mx.sender.example>" not in result.in_reply_to


EXCHANGE_NDR = msg(
    """
From: Microsoft Outlook <postmaster@prospect.example>
To: <rep@sender.example>
Date: Wed, 5 Mar 2025 11:02:10 +0000
Subject: Undeliverable: Following up
Auto-Submitted: auto-replied
X-MS-Exchange-Message-Is-Ndr:
Message-ID: <ndr-1@EX01.prospect.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="ndr-b"
""",
    """
--ndr-b
Content-Type: text/plain; charset="us-ascii"

Delivery has failed to these recipients or groups:

old.contact@prospect.example
The email address you entered couldn't be found. Please check the recipient's email
address and try to resend the message.

Diagnostic information for administrators:

Generating server: EX01.prospect.example

old.contact@prospect.example
Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by
SMTP address lookup'

--ndr-b
Content-Type: message/delivery-status

Reporting-MTA: dns;EX01.prospect.example
Received-From-MTA: dns;mx.sender.example
Arrival-Date: Wed, 5 Mar 2025 11:02:09 +0000

Final-Recipient: rfc822;old.contact@prospect.example
Action: failed
Status: 5.1.10
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by
 SMTP address lookup

--ndr-b
Content-Type: text/rfc822-headers

From: Sam Rep <rep@sender.example>
To: <old.contact@prospect.example>
Subject: Following up
Message-ID: <cadence.step2.77@sender.example>
Date: Wed, 5 Mar 2025 11:02:00 +0000

--ndr-b--
""",
)


def test_exchange_ndr_is_a_hard_bounce_not_an_auto_reply() -> None:
    # Exchange marks NDRs "Auto-Submitted: auto-replied"; they must still read as bounces
    result = classify_message(EXCHANGE_NDR)
    assert result.kind == "bounce"
    assert result.auto_reply is None
    [bounce] = result.bounces
    assert bounce.recipient == "old.contact@prospect.example"
    assert bounce.status == "5.1.10"
    assert bounce.reason == "userunknown"
    assert bounce.hard is True
    assert result.in_reply_to == ["<cadence.step2.77@sender.example>"]


QMAIL_BOUNCE = msg(
    """
Return-Path: <>
Date: 6 Mar 2025 07:30:00 -0000
From: MAILER-DAEMON@mail.sender.example
To: rep@sender.example
Subject: failure notice
""",
    """
Hi. This is the qmail-send program at mail.sender.example.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<bob@busy.example>:
192.0.2.25 does not like recipient.
Remote host said: 552 5.2.2 <bob@busy.example>... Mailbox is full
Giving up on 192.0.2.25.

--- Below this line is a copy of the message.

Return-Path: <rep@sender.example>
Received: (qmail 4321 invoked by uid 1000); 6 Mar 2025 07:29:58 -0000
Message-ID: <cadence.step1.99@sender.example>
From: rep@sender.example
To: bob@busy.example
Subject: Hello Bob

Hello!
""",
)


def test_qmail_free_text_bounce_is_soft_mailbox_full() -> None:
    result = classify_message(QMAIL_BOUNCE)
    assert result.kind == "bounce"
    [bounce] = result.bounces
    assert bounce.recipient == "bob@busy.example"
    assert bounce.reply_code == "552"
    assert bounce.status == "5.2.2"
    assert bounce.reason == "mailboxfull"
    assert bounce.hard is False
    assert "<cadence.step1.99@sender.example>" in result.in_reply_to


DELAYED_DSN = msg(
    """
From: Mail Delivery System <MAILER-DAEMON@mx.sender.example>
To: rep@sender.example
Subject: Delayed Mail (still being retried)
Date: Thu, 6 Mar 2025 14:00:00 +0100
Content-Type: multipart/report; report-type=delivery-status; boundary="d1"
MIME-Version: 1.0
""",
    """
--d1
Content-Type: text/plain

This is the mail system at host mx.sender.example.

####################################################################
# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #
####################################################################

<slow@far.example>: connect to mx.far.example[198.51.100.9]:25: Connection timed out

--d1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.sender.example

Final-Recipient: rfc822; slow@far.example
Action: delayed
Status: 4.4.1
Diagnostic-Code: X-Postfix; connect to mx.far.example[198.51.100.9]:25: Connection timed out
Will-Retry-Until: Mon, 10 Mar 2025 14:00:00 +0100

--d1--
""",
)


def test_delayed_dsn_is_a_delivery_report_not_a_failure() -> None:
    result = classify_message(DELAYED_DSN)
    assert result.kind == "delivery_report"
    [row] = result.bounces
    assert row.recipient == "slow@far.example"
    assert row.action == "delayed"
    assert row.status == "4.4.1"
    assert row.hard is False


def test_failed_with_temporary_status_is_still_a_soft_bounce() -> None:
    raw = DELAYED_DSN.replace(b"Action: delayed", b"Action: failed").replace(
        b"Delayed Mail (still being retried)", b"Undelivered Mail Returned to Sender"
    ).replace(b"THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE.",
              b"message could not be delivered; giving up after 5 days.           ")
    result = classify_message(raw)
    assert result.kind == "bounce"
    assert result.bounces[0].hard is False  # 4.x.x never marks an address dead


ARF_REPORT = msg(
    """
From: <staff@feedback.mailbox.example>
To: <abuse@sender.example>
Subject: Abuse report
Date: Fri, 7 Mar 2025 09:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="arf"
""",
    """
--arf
Content-Type: text/plain

This is an email abuse report for an email message received from IP 192.0.2.1.

--arf
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Rcpt-To: <jane.doe@prospect.example>

--arf
Content-Type: message/rfc822

From: rep@sender.example
To: jane.doe@prospect.example
Subject: Quick question
Message-ID: <cadence.step1.5@sender.example>

Hi
--arf--
""",
)


def test_arf_abuse_report_is_feedback() -> None:
    result = classify_message(ARF_REPORT)
    assert result.kind == "feedback"
    assert result.bounces == []
    assert result.feedback_type == "abuse"


def test_a_person_forwarding_a_bounce_is_not_a_bounce() -> None:
    raw = msg(
        """
From: Sam Rep <rep@sender.example>
To: it@sender.example
Subject: Fwd: Undelivered Mail Returned to Sender
Date: Wed, 5 Mar 2025 10:00:00 +0100
""",
        """
Can you check why this one bounced? It says user unknown.

---------- Forwarded message ---------
From: MAILER-DAEMON@mx.sender.example
Subject: Undelivered Mail Returned to Sender

<jane.doe@prospect.example>: 550 5.1.1 User unknown
""",
    )
    result = classify_message(raw)
    assert result.kind == "reply"
    assert result.bounces == []


# --- auto-replies ----------------------------------------------------------------------------

OOO_TEMPLATE = """
From: {sender}
To: Sam Rep <rep@sender.example>
Subject: {subject}
Date: {date}
Message-ID: <oof.{n}@prospect.example>
{extra}
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
"""


def ooo(subject: str, body: str, *, extra: str = "Auto-Submitted: auto-replied",
        sent: str = "Wed, 05 Mar 2025 08:00:00 +0100", n: int = 1,
        sender: str = "Kim Lee <kim@prospect.example>") -> bytes:
    return msg(OOO_TEMPLATE.format(subject=subject, date=sent, extra=extra, n=n, sender=sender),
               body)


@pytest.mark.parametrize(
    ("subject", "body", "expected"),
    [
        ("Out of Office: Quick question",
         "I am out of the office and will be back on Monday 14 April. "
         "I have limited access to email.", date(2025, 4, 14)),
        ("Automatische Antwort: Kurze Frage",
         "Ich bin im Urlaub und ab dem 14.04. wieder im Büro.", date(2025, 4, 14)),
        ("Réponse automatique : Question rapide",
         "Je suis absent du bureau et serai de retour le 14 avril.", date(2025, 4, 14)),
        ("Respuesta automática: Pregunta rápida",
         "Estoy fuera de la oficina. Regreso el 14 de abril.", date(2025, 4, 14)),
        ("Resposta automática: Pergunta rápida",
         "Estou fora do escritório e volto no dia 14 de abril.", date(2025, 4, 14)),
        ("Risposta automatica: Domanda veloce",
         "Sono fuori sede, rientro il 14 aprile.", date(2025, 4, 14)),
        ("Automatisch antwoord: Korte vraag",
         "Ik ben afwezig tot en met 11 april en ben weer aanwezig op 14 april.",
         date(2025, 4, 14)),
        ("Out of Office", "I'm away until 3/14 with no access to email.", date(2025, 3, 14)),
    ],
)
def test_out_of_office_in_several_languages_with_return_date(
    subject: str, body: str, expected: date
) -> None:
    result = classify_message(ooo(subject, body))
    assert result.kind == "auto_reply"
    assert result.auto_reply is not None
    assert result.auto_reply.return_date == expected


def test_relative_return_date_resolves_against_the_date_header() -> None:
    # Wednesday 5 March 2025 -> "back Monday" is Monday 10 March
    result = classify_message(ooo("Automatic reply: Intro", "I'm travelling, back Monday."))
    assert result.auto_reply is not None
    assert result.auto_reply.return_date == date(2025, 3, 10)
    # the same words a week later resolve a week later
    later = classify_message(ooo("Automatic reply: Intro", "I'm travelling, back Monday.",
                                 sent="Wed, 12 Mar 2025 08:00:00 +0100", n=2))
    assert later.auto_reply is not None
    assert later.auto_reply.return_date == date(2025, 3, 17)


def test_year_rolls_over_for_a_return_date_early_next_year() -> None:
    result = classify_message(ooo("Out of Office", "Back on 6 January.",
                                  sent="Mon, 22 Dec 2025 09:00:00 +0100", n=3))
    assert result.auto_reply is not None
    assert result.auto_reply.return_date == date(2026, 1, 6)


def test_german_file_auto_reply_with_inclusive_range() -> None:
    result = classify_message((DATA / "ooo_de.eml").read_bytes())
    assert result.kind == "auto_reply"
    assert result.auto_reply is not None
    assert result.auto_reply.return_date == date(2025, 3, 17)
    assert result.in_reply_to == ["<cadence.step1.43@sender.example>"]


def test_auto_reply_without_a_stated_date_has_null_return_date() -> None:
    result = classify_message(ooo("Automatic reply: Intro",
                                  "Thank you for your message. I am currently out of the office."))
    assert result.kind == "auto_reply"
    assert result.auto_reply is not None
    assert result.auto_reply.return_date is None


def test_x_autoreply_header_marks_an_auto_reply() -> None:
    raw = ooo("Re: Intro", "Thanks, I will read your mail when I am back.",
              extra="X-Autoreply: yes")
    assert classify_message(raw).kind == "auto_reply"


def test_precedence_bulk_alone_is_not_an_out_of_office() -> None:
    raw = ooo("Our March newsletter", "Ten tips for better onboarding. Unsubscribe here.",
              extra="Precedence: bulk\nList-Id: <news.prospect.example>")
    result = classify_message(raw)
    assert result.kind == "other"
    assert result.auto_reply is None


def test_x_auto_response_suppress_alone_does_not_make_an_auto_reply() -> None:
    # Outlook puts this on ordinary mail (and we put it on ours)
    raw = ooo("RE: Intro", "Sounds good, let's talk Thursday.\n\nKim",
              extra="X-Auto-Response-Suppress: All\nIn-Reply-To: <cadence.step1.1@sender.example>")
    assert classify_message(raw).kind == "reply"


# --- human replies ---------------------------------------------------------------------------


def test_human_reply_text_without_history_and_signature() -> None:
    result = classify_message((DATA / "human_reply.eml").read_bytes())
    assert result.kind == "reply"
    assert result.reply_text == (
        "Hi Sam,\n\nThursday at 3pm works for me. Send an invite?\n\nBest,\nJane"
    )
    assert result.in_reply_to == [
        "<cadence.step1.42@sender.example>", "<cadence.step0.41@sender.example>",
    ]


def test_human_reply_mentioning_out_of_office_stays_a_reply() -> None:
    raw = msg(
        """
From: Jane Doe <jane.doe@prospect.example>
To: Sam Rep <rep@sender.example>
Subject: Re: Quick question
Date: Wed, 05 Mar 2025 09:12:44 +0000
In-Reply-To: <cadence.step1.42@sender.example>
""",
        """
Sorry for the slow answer, I was out of office last week and I'm on vacation
again from 20 March. Automatic reply rules are a pain. Can we talk tomorrow?

Jane
""",
    )
    result = classify_message(raw)
    assert result.kind == "reply"
    assert result.auto_reply is None
    assert result.bounces == []


def test_person_typing_an_absence_subject_is_not_an_auto_reply() -> None:
    raw = msg(
        """
From: Jane Doe <jane.doe@prospect.example>
To: Sam Rep <rep@sender.example>
Subject: Out of office next week - can we move our call to Friday?
Date: Wed, 05 Mar 2025 09:12:44 +0000
""",
        "I'll be out of the office next week. Does Friday the 21st work?\n",
    )
    assert classify_message(raw).kind == "reply"


def test_outlook_reply_header_block_is_cut() -> None:
    text = (
        "Yes, please send the contract.\n\nRegards\nTom\n\n"
        "________________________________\n"
        "From: Sam Rep <rep@sender.example>\n"
        "Sent: Tuesday, March 4, 2025 10:15 AM\n"
        "To: Tom <tom@prospect.example>\n"
        "Subject: Contract\n\nHi Tom, shall I send the contract?\n"
    )
    assert extract_reply_text(text) == "Yes, please send the contract.\n\nRegards\nTom"


@pytest.mark.parametrize(
    "attribution",
    [
        "Am 04.03.2025 um 10:15 schrieb Sam Rep <rep@sender.example>:",
        "Le mar. 4 mars 2025 à 10:15, Sam Rep <rep@sender.example> a écrit :",
        "El mar, 4 mar 2025 a las 10:15, Sam Rep (<rep@sender.example>) escribió:",
        "Em ter., 4 de mar. de 2025 às 10:15, Sam Rep <rep@sender.example> escreveu:",
        "Il giorno mar 4 mar 2025 alle ore 10:15 Sam Rep <rep@sender.example> ha scritto:",
        "Op di 4 mrt 2025 om 10:15 schreef Sam Rep <rep@sender.example>:",
        "-----Original Message-----",
        "-----Ursprüngliche Nachricht-----",
    ],
)
def test_quoted_history_is_cut_in_many_languages(attribution: str) -> None:
    text = f"Danke, passt.\n\n{attribution}\n> Hallo, passt Donnerstag?\n> Sam\n"
    assert extract_reply_text(text) == "Danke, passt."


def test_wrapped_attribution_line_is_cut() -> None:
    text = ("Works for me.\n\nOn Tue, Mar 4, 2025 at 10:15 AM Sam Rep <\n"
            "rep@sender.example> wrote:\n\n> Does Thursday work?\n")
    assert extract_reply_text(text) == "Works for me."


def test_mobile_signature_is_cut_but_a_sentence_mentioning_wrote_is_kept() -> None:
    text = "I wrote the summary you asked for:\nsee attached.\n\nSent from my iPhone\n"
    assert extract_reply_text(text) == "I wrote the summary you asked for:\nsee attached."


def test_html_only_reply_drops_gmail_and_outlook_quotes() -> None:
    gmail = (
        '<div dir="ltr">Sounds great, talk <b>Thursday</b>.<br><br>Jane</div><br>'
        '<div class="gmail_quote"><div class="gmail_attr">On Tue, Mar 4, 2025 Sam wrote:</div>'
        "<blockquote>Does Thursday work?</blockquote></div>"
    )
    assert extract_reply_from_html(gmail) == "Sounds great, talk Thursday.\n\nJane"
    outlook = (
        "<html><body><div>Please call me on Monday.</div><div>Tom</div>"
        '<hr><div id="divRplyFwdMsg"><b>From:</b> Sam Rep<br><b>Sent:</b> Tuesday</div>'
        "<div>Earlier text we sent</div></body></html>"
    )
    assert extract_reply_from_html(outlook) == "Please call me on Monday.\nTom"


def test_html_only_message_classifies_with_reply_text() -> None:
    raw = msg(
        """
From: Jane Doe <jane.doe@prospect.example>
To: Sam Rep <rep@sender.example>
Subject: RE: Quick question
Date: Wed, 05 Mar 2025 09:12:44 +0000
In-Reply-To: <cadence.step1.42@sender.example>
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8
""",
        '<p>Not interested, thanks.</p><div id="appendonsend"></div>'
        "<p>From: Sam<br>Sent: Tuesday</p><p>Hi Jane, do you have ten minutes?</p>",
    )
    result = classify_message(raw)
    assert result.kind == "reply"
    assert result.reply_text == "Not interested, thanks."


# --- hostile and malformed input -------------------------------------------------------------


def test_not_a_message_is_a_typed_error() -> None:
    with pytest.raises(MalformedMessageError) as info:
        classify_message((DATA / "not_a_message.bin").read_bytes())
    assert info.value.code == "malformed_message"
    with pytest.raises(MalformedMessageError):
        classify_message(b"")


def test_truncated_multipart_and_unknown_charset_still_classify() -> None:
    truncated = EXCHANGE_NDR[: EXCHANGE_NDR.index(b"Content-Type: text/rfc822-headers")]
    result = classify_message(truncated)
    assert result.kind == "bounce"
    assert result.bounces[0].recipient == "old.contact@prospect.example"
    odd = msg(
        """
From: =?x-unknown-charset?Q?J=E4ne?= <jane@prospect.example>
To: rep@sender.example
Subject: =?utf-8?B?broken base64
Content-Type: text/plain; charset=x-klingon
Content-Transfer-Encoding: quoted-printable
""",
        "Ja, gerne =E4=FC=ZZ\n",
    )
    assert classify_message(odd).kind == "reply"


def test_hostile_sizes_are_bounded() -> None:
    many_parts = (
        b"From: a@prospect.example\nSubject: x\nContent-Type: multipart/mixed; boundary=B\n\n"
        + b"--B\nContent-Type: text/plain\n\nhello\n" * 20000 + b"--B--\n"
    )
    long_line = b"From: a@prospect.example\nSubject: Re: x\n\n" + b"On wrote: " * 300000
    for raw in (many_parts, long_line):
        started = time.perf_counter()
        assert classify_message(raw).kind == "reply"
        # generous: the point is "bounded", not fast (timing belongs in bench/)
        assert time.perf_counter() - started < 20


# --- more report shapes ----------------------------------------------------------------------

AOL_STYLE_DSN = msg(
    """
From: Mail Delivery Subsystem <MAILER-DAEMON@relay.example>
To: rep@sender.example
Subject: Mail Delivery Problem
Date: Thu, 6 Mar 2025 12:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="x"
""",
    """
--x
Content-Type: text/plain

We were unable to deliver your message to the following addresses.

--x
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.example
Final-Recipient: rfc822; full@one.example
Action: failed
Status: 5.2.2
Diagnostic-Code: smtp; 552 5.2.2 <full@one.example>... Mailbox Full
Final-Recipient: rfc822; gone@two.example
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <gone@two.example>... User Unknown
--x--
""",
)


def test_dsn_without_blank_lines_between_recipients_gives_one_row_each() -> None:
    result = classify_message(AOL_STYLE_DSN)
    assert result.kind == "bounce"
    rows = [(b.recipient, b.status, b.reason, b.hard) for b in result.bounces]
    assert rows == [
        ("full@one.example", "5.2.2", "mailboxfull", False),
        ("gone@two.example", "5.1.1", "userunknown", True),
    ]


def test_exim_bounce_uses_x_failed_recipients() -> None:
    raw = msg(
        """
Return-path: <>
From: Mail Delivery System <Mailer-Daemon@mx.sender.example>
To: rep@sender.example
Subject: Mail delivery failed: returning message to sender
X-Failed-Recipients: nobody.here@prospect.example
Auto-Submitted: auto-replied
Date: Thu, 06 Mar 2025 10:00:00 +0000
""",
        """
This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  nobody.here@prospect.example
    host mx.prospect.example [198.51.100.3]
    SMTP error from remote mail server after RCPT TO:<nobody.here@prospect.example>:
    550 5.1.1 <nobody.here@prospect.example>: Recipient address rejected: User unknown

------ This is a copy of the message, including all the headers. ------

Message-Id: <cadence.step3.7@sender.example>
From: rep@sender.example
To: nobody.here@prospect.example
Subject: Checking in
""",
    )
    result = classify_message(raw)
    assert result.kind == "bounce"
    [bounce] = result.bounces
    assert (bounce.recipient, bounce.reply_code, bounce.status) == (
        "nobody.here@prospect.example", "550", "5.1.1")
    assert bounce.hard is True
    assert result.in_reply_to == ["<cadence.step3.7@sender.example>"]


def test_blocklisted_sender_is_a_soft_blocked_bounce() -> None:
    raw = QMAIL_BOUNCE.replace(
        b"Remote host said: 552 5.2.2 <bob@busy.example>... Mailbox is full",
        b"Remote host said: 554 5.7.1 Service unavailable; Client host [192.0.2.9] blocked "
        b"using zen.spamhaus.org",
    )
    [bounce] = classify_message(raw).bounces
    assert bounce.reason == "blocked"
    assert bounce.hard is False


def test_reply_written_below_the_quote_is_found() -> None:
    text = ("On Tue, Mar 4, 2025 at 10:15 AM Sam Rep <rep@sender.example> wrote:\n"
            "> Does Thursday work?\n>\n> Sam\n\nThursday is fine.\n")
    assert extract_reply_text(text) == "Thursday is fine."


def test_challenge_response_request_is_machine_mail_not_a_reply() -> None:
    raw = msg(
        """
From: kim@prospect.example
To: rep@sender.example
Subject: RE: Quick question
Date: Wed, 05 Mar 2025 09:00:00 +0000
""",
        """
Your message was received but this mailbox is protected by SpamShield.
Please click the link below to have your address added to the recipient's allowed list.

https://spamshield.example/verify/abc
""",
    )
    assert classify_message(raw).kind == "other"


def test_reply_through_a_shared_list_address_is_still_a_reply() -> None:
    # sales@ as a Google Group: list headers on a person's answer to our message
    raw = msg(
        """
From: Kim Lee <kim@prospect.example>
To: Sam Rep <rep@sender.example>
Subject: Re: Quick question
Date: Wed, 05 Mar 2025 09:00:00 +0000
In-Reply-To: <cadence.step1.8@sender.example>
Precedence: list
List-Id: <sales.prospect.example>
Mailing-list: list sales@prospect.example; contact sales+owners@prospect.example
""",
        "Yes, let's talk on Friday.\n\nKim\n",
    )
    result = classify_message(raw)
    assert result.kind == "reply"
    assert result.reply_text == "Yes, let's talk on Friday.\n\nKim"


@pytest.mark.parametrize(
    "first_line",
    ["Thursday 3pm works, call me.", "Mon 9am is fine", "12:30 suits me", "2026-12-01 works"],
)
def test_a_reply_that_starts_with_a_date_or_weekday_is_kept(first_line: str) -> None:
    text = (
        f"{first_line}\n\nOn Fri, Nov 27, 2026 at 10:00 AM Rita Rep <rita@example.com> wrote:\n"
        "> Quick question\n"
    )
    assert extract_reply_text(text) == first_line
