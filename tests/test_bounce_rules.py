"""Bounce reason rules: the SMTP stage, "user unknown" vs a filter, hard/soft, provider wordings.

Every message here is written for these tests (the shared corpus is only read by
bench/classify_accuracy.py).
"""

from __future__ import annotations

import pytest

from cadence.mail.bounce_context import failed_command, provider_of, provider_reason
from cadence.mail.bounce_reasons import (
    is_hard,
    reason_for,
    refine_by_phase,
    refine_user_unknown,
)
from cadence.mail.classify import classify_message


def msg(headers: str, body: str) -> bytes:
    return (headers.strip("\n") + "\n\n" + body.lstrip("\n")).encode("utf-8")


# --- the SMTP stage a failure answered ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "stage"),
    [
        # Postfix, with the line folded inside the phrase
        ("host mx.example.net[192.0.2.1] said: 550 No such user (in reply to\n    RCPT TO command)",
         "RCPT"),
        ("said: 554 5.7.1 Rejected by content filter (in reply to end of DATA command)", "DATA"),
        ("said: 553 sender unknown (in reply to MAIL FROM command)", "MAIL"),
        # Exim
        ("SMTP error from remote mail server after RCPT TO:<a@example.net>:\n550 unknown user",
         "RCPT"),
        ("SMTP error from remote mail server after end of data:\n550 rejected", "DATA"),
        ("SMTP error from remote server after RCPT command:\nhost: mx.example.net", "RCPT"),
        ("mx.example.net [192.0.2.1] did not like our RCPT TO:\n550 no mailbox", "RCPT"),
        # a session transcript: the command right before the first error reply
        (">>> RCPT To:<a@example.net>\n<<< 250 ok\n>>> DATA\n<<< 550 User unknown\n", "DATA"),
        (">>> RCPT To:<a@example.net>\n<<< 550 5.1.1 User unknown\n", "RCPT"),
        # qmail
        ("192.0.2.9 does not like recipient.\nRemote host said: 550 no such user", "RCPT"),
        ("192.0.2.9 failed after I sent the message.\nRemote host said: 554 spam", "DATA"),
        ("Sorry, no SMTP connection got far enough; most progress was RCPT TO response", "RCPT"),
        # as a field, or an upper-case token beside the reply
        ("Last command: DATA\nReply: 550 rejected", "DATA"),
        ("SMTP:RCPT host 192.0.2.8: 553 No such user here", "RCPT"),
        ("550 5.2.1 User Unknown\n[RCPT_TO]", "RCPT"),
        ("Failed: RCPT TO:<a@example.net> 550 Unknown user", "RCPT"),
        # nothing says it
        ("550 Unknown user a@example.net", None),
        # the original envelope listed as a field is not a stage
        ("Message details:\n  RCPT TO: a@example.net\n  Size: 10", None),
        # plain English "after mail" is not a command
        ("This happened after mail was queued for 3 days", None),
    ],
)
def test_failed_command_reads_the_stage_the_report_names(text: str, stage: str | None) -> None:
    assert failed_command(text) == stage


# --- "user unknown" at the mailbox lookup vs a filter after it ---------------------------------


def test_user_unknown_with_an_address_status_stays_userunknown() -> None:
    assert refine_user_unknown("userunknown", "550 5.1.1 User unknown", "5.1.1") == "userunknown"
    assert refine_user_unknown("userunknown", "550 address rejected", "5.1.0") == "userunknown"
    # Microsoft's extended "recipient not found" forms
    assert refine_user_unknown("userunknown", "550 unknown recipient", "5.1.351") == "userunknown"


def test_user_unknown_in_reply_to_rcpt_stays_userunknown_whatever_the_status() -> None:
    text = "said: 550 5.2.1 <a@example.net>... User Unknown (in reply to RCPT TO command)"
    assert refine_user_unknown("userunknown", text, "5.2.1") == "userunknown"


def test_user_unknown_after_data_is_a_filter() -> None:
    text = ">>> DATA\n<<< 550 5.0.0 <a@example.net>... User unknown\n"
    assert refine_user_unknown("userunknown", text, "5.0.0") == "filtered"


def test_user_unknown_with_neither_status_nor_stage_is_a_filter() -> None:
    assert refine_user_unknown("userunknown", "550 Unknown user a@example.net", None) == "filtered"
    assert refine_user_unknown("userunknown", "550 5.2.1 a@example.net User unknown",
                               "5.2.1") == "filtered"


def test_qmail_rcpthosts_refusal_is_an_address_the_server_does_not_take() -> None:
    text = ("553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1) (in reply to"
            " RCPT TO command)")
    reason = refine_by_phase(reason_for(text, "5.7.1", "553"), text, "5.7.1")
    assert reason == "userunknown"
    assert is_hard(reason, "5.7.1", "553") is True


def test_other_reasons_are_left_alone() -> None:
    assert refine_user_unknown("mailboxfull", "552 mailbox full", None) == "mailboxfull"


@pytest.mark.parametrize(
    "text",
    [
        "MSEXCH:IMS:ORG:SITE:SERVER 0 (000C05A6) Unknown Recipient",
        "550 5.4.1 Recipient address rejected: Access denied. [AM0PR01.prod.outlook.com]",
        "550 5.5.0 RESOLVER.ADR.RecipNotFound; not found",
        "Invalid final delivery userid: a@example.net",
        "User Jane Doe (a@example.net) not listed in Domino Directory",
        "User  not listed in public Name & Address Book",
        "mail.local: unknown user: jdoe",
        "554 delivery error: dd This user doesn't have a example.net account (a@example.net)",
        "Your message wasn't delivered to a@example.net because the address couldn't be found,"
        " or is unable to receive mail.",
        "550 5.5.0 Adresse destinataire invalide. Invalid recipient. LPN001_416",
    ],
)
def test_wordings_only_a_mailbox_lookup_produces_stay_userunknown(text: str) -> None:
    assert refine_user_unknown("userunknown", text, None) == "userunknown"


def test_recipient_address_rejected_after_data_is_still_qualified_by_the_stage() -> None:
    # "rejected" + "recipient address rejected" becomes a user-unknown question first
    text = ">>> DATA\n<<< 550 Recipient address rejected: no thanks\n"
    assert refine_by_phase("rejected", text, None) == "filtered"
    text = "said: 550 Recipient address rejected (in reply to RCPT TO command)"
    assert refine_by_phase("rejected", text, None) == "userunknown"


# --- hard or soft --------------------------------------------------------------------------


def test_missing_mailbox_is_hard_even_with_a_4xx_code_on_a_final_failure() -> None:
    assert is_hard("userunknown", "4.1.1", "450") is True
    assert is_hard("hostunknown", None, "450") is True
    assert is_hard("hasmoved", "5.1.6", "551") is True


def test_notaccept_is_hard_only_when_permanent() -> None:
    assert is_hard("notaccept", "5.1.10", "550") is True
    assert is_hard("notaccept", None, None) is True
    assert is_hard("notaccept", "4.3.2", "421") is False


def test_filtered_and_other_reasons_are_soft() -> None:
    assert is_hard("filtered", "5.0.0", "550") is False
    assert is_hard("mailboxfull", "5.2.2", "552") is False


# --- provider wordings ---------------------------------------------------------------------


def test_provider_is_found_from_host_names_and_addresses() -> None:
    assert provider_of("Reporting-MTA: dns;BAY004-MC1F22.hotmail.com") == "outlook.com"
    assert provider_of("postmaster@outlook.com") == "outlook.com"
    assert provider_of("server-7.tower-12.messagelabs.com") == "messagelabs"
    assert provider_of("mta7.am0.yahoodns.net") == "yahoo"
    assert provider_of("mx.example.net notmessagelabs.com.example") is None


def test_provider_wording_decides_only_for_that_provider() -> None:
    text = "550 Requested action not taken: mailbox unavailable"
    assert provider_reason("postmaster@hotmail.com", text) == "userunknown"
    assert provider_reason("postmaster@example.net", text) is None
    assert provider_reason("server-1.tower-2.messagelabs.com", "550 a@x.example... No such user"
                           ) == "userunknown"
    assert provider_reason("server-1.tower-2.messagelabs.com", "552 mailbox full") is None


def test_orange_and_la_poste_labels_name_the_cause() -> None:
    assert provider_reason("", "550 5.2.0 Mail rejete. Mail rejected. OFR_506 [506]") == (
        "spamdetected")
    assert provider_reason("", "421 4.2.0 Service refuse. OFR005_505 [505]") == "systemerror"
    assert provider_reason("", "554 5.7.1 Client host rejected LPN000_630") == "policyviolation"
    # a "try later" label carries no cause; other digits are not a label
    assert provider_reason("", "421 Service refused, please try later. LPN006_107") is None
    assert provider_reason("", "550 ticket ABC_506 rejected") is None


def test_messagelabs_asking_for_authentication_is_a_security_error() -> None:
    text = "550-Please turn on SMTP Authentication in your mail client."
    assert provider_reason("mail9.bemta1.messagelabs.com", text) == "securityerror"


# --- specific causes outranking the words around them -----------------------------------------


@pytest.mark.parametrize(
    ("text", "status", "reason"),
    [
        # the recipient's own preferences, even beside a 5.1.1
        ("550 5.1.1 RCP-P2 Refused due to recipient preferences", "5.1.1", "filtered"),
        # receiving too fast is not a disabled mailbox
        ("550-5.2.1 The user you are trying to contact is receiving mail at a rate that"
         " prevents additional messages from being delivered.", "5.2.1", "speeding"),
        ("450 User is receiving mail too quickly", None, "speeding"),
        # a refusal "for policy reasons" at MAIL FROM is a policy, not a sender problem
        ("554 Mail from a@example.net rejected for policy reasons. (in reply to MAIL FROM"
         " command)", None, "policyviolation"),
        # the cause of expiry, not the expiry
        ("550 5.4.312 Message expired, DNS query failed", "5.4.312", "networkerror"),
        ("550 5.4.316 Message expired, connection refused", "5.4.316", "expired"),
        ("Unable to contact LDAP server. (#4.4.3) I'm not going to try again; this message has"
         " been in the queue too long.", "4.4.3", "systemerror"),
        # a size limit worded as "max message size exceeded"
        ("550 RCPT TO:<a@example.net> max message size exceeded", "5.1.1", "mesgtoobig"),
    ],
)
def test_specific_causes_win(text: str, status: str | None, reason: str) -> None:
    assert reason_for(text, status, None) == reason


def test_a_name_server_failure_is_a_network_error_not_a_missing_domain() -> None:
    text = ("Name service error for name=example.org type=MX: Malformed or unexpected name"
            " server reply")
    assert reason_for(text, "5.4.4", None) == "hostunknown"
    assert refine_by_phase("hostunknown", text, "5.4.4") == "networkerror"
    # NXDOMAIN stays a missing domain
    text = "Host or domain name not found. Name service error for name=nx.example type=A"
    assert refine_by_phase(reason_for(text, "5.4.4", None), text, "5.4.4") == "hostunknown"


# --- end to end: written reports ---------------------------------------------------------------


def _dsn(diagnostic: str, status: str, human: str = "", remote: str = "mx.example.net") -> bytes:
    return msg(
        """
From: Mail Delivery System <MAILER-DAEMON@mail.sender.example>
To: rep@sender.example
Subject: Undelivered Mail Returned to Sender
Date: Thu, 6 Mar 2025 10:00:00 +0000
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"
""",
        f"""
--b1
Content-Type: text/plain

This is the mail system at host mail.sender.example.

{human}

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.sender.example

Final-Recipient: rfc822; jane@prospect.example
Action: failed
Status: {status}
Remote-MTA: dns; {remote}
{diagnostic}

--b1
Content-Type: text/rfc822-headers

From: rep@sender.example
To: jane@prospect.example
Subject: Following up
Message-ID: <step1.99@sender.example>

--b1--
""",
    )


def test_dsn_user_unknown_in_reply_to_rcpt_is_a_hard_userunknown() -> None:
    raw = _dsn("Diagnostic-Code: smtp; 550 <jane@prospect.example>: User unknown (in reply to"
               " RCPT TO command)", "5.0.0")
    bounce = classify_message(raw).bounces[0]
    assert (bounce.reason, bounce.hard) == ("userunknown", True)


def test_dsn_user_unknown_with_no_stage_and_a_generic_status_is_a_soft_filter() -> None:
    raw = _dsn("Diagnostic-Code: smtp; 550 Unknown user jane@prospect.example", "5.0.0")
    bounce = classify_message(raw).bounces[0]
    assert (bounce.reason, bounce.hard) == ("filtered", False)


def test_dsn_without_diagnostic_takes_the_specific_status_from_the_human_part() -> None:
    human = ("jane@prospect.example: 550 5.1.1 <jane@prospect.example>: Recipient address"
             " rejected: User unknown")
    bounce = classify_message(_dsn("", "5.0.0", human)).bounces[0]
    assert bounce.status == "5.1.1"
    assert (bounce.reason, bounce.hard) == ("userunknown", True)


def test_dsn_from_hotmail_mailbox_unavailable_is_userunknown() -> None:
    raw = _dsn("Diagnostic-Code: smtp; 550 Requested action not taken: mailbox unavailable",
               "5.5.0", remote="mx1.hotmail.com")
    bounce = classify_message(raw).bounces[0]
    assert (bounce.reason, bounce.hard) == ("userunknown", True)
    # the same words from an unknown server carry no lookup evidence
    raw = _dsn("Diagnostic-Code: smtp; 550 Requested action not taken: mailbox unavailable",
               "5.5.0")
    assert classify_message(raw).bounces[0].hard is False


FREE_TEXT = msg(
    """
From: Mail Delivery Subsystem <MAILER-DAEMON@gw.sender.example>
To: rep@sender.example
Subject: Delivery failure
Date: Thu, 6 Mar 2025 10:00:00 +0000
""",
    """
------- Failure Reasons  --------

User  not listed in public Name & Address Book
jane@prospect.example

------- Returned Message --------
""",
)


def test_free_text_reason_found_above_the_recipient_is_qualified_by_those_words() -> None:
    bounce = classify_message(FREE_TEXT).bounces[0]
    assert bounce.recipient == "jane@prospect.example"
    assert (bounce.reason, bounce.hard) == ("userunknown", True)
