"""The built-in table of major mail providers, and provider detection from MX hosts.

A company domain hosted at Microsoft 365 or Google Workspace says so in its MX records
(``*.mail.protection.outlook.com``, ``aspmx.l.google.com``), so the table answers for those
domains too, without any other network access.  The facts (host names, ports, what sign-in the
provider demands) are from the providers' own help pages as of 2025-2026.
"""

from __future__ import annotations

from dataclasses import dataclass

from cadence.mail.discovery_types import ServerSetting, host_in_domain, normalise_host
from cadence.mail.endpoints import Security

TLS = Security.TLS
STARTTLS = Security.STARTTLS


@dataclass(frozen=True)
class Provider:
    id: str
    name: str
    imap: ServerSetting
    smtp: ServerSetting
    auth: tuple[str, ...]  # "oauth2", "app-password", "password"
    note: str
    domains: tuple[str, ...] = ()  # mailbox domains served (exact match)
    mx_suffixes: tuple[str, ...] = ()  # MX host equal to, or ending in "." + suffix
    username: str = "%EMAILADDRESS%"

    def hosts(self) -> tuple[str, str]:
        return self.imap.host, self.smtp.host


def _s(host: str, port: int, security: Security) -> ServerSetting:
    return ServerSetting(host, port, security)


PROVIDERS: tuple[Provider, ...] = (
    Provider(
        id="microsoft365",
        name="Microsoft 365 (Exchange Online)",
        imap=_s("outlook.office365.com", 993, TLS),
        smtp=_s("smtp.office365.com", 587, STARTTLS),
        auth=("oauth2",),
        note=(
            "Microsoft 365 requires OAuth2 (Modern Authentication) for IMAP; basic "
            "authentication is disabled. SMTP AUTH must be enabled for the mailbox by an admin."
        ),
        mx_suffixes=("mail.protection.outlook.com",),
    ),
    Provider(
        id="outlook.com",
        name="Outlook.com / Hotmail",
        imap=_s("outlook.office365.com", 993, TLS),
        smtp=_s("smtp-mail.outlook.com", 587, STARTTLS),
        auth=("oauth2",),
        note="Outlook.com accepts only OAuth2 sign-in for IMAP and SMTP (no passwords).",
        domains=(
            "outlook.com",
            "hotmail.com",
            "live.com",
            "msn.com",
            "passport.com",
            "hotmail.co.uk",
            "hotmail.fr",
            "hotmail.de",
            "hotmail.it",
            "hotmail.es",
            "live.co.uk",
            "live.fr",
            "live.de",
            "outlook.fr",
            "outlook.de",
            "outlook.es",
        ),
        mx_suffixes=("olc.protection.outlook.com",),
    ),
    Provider(
        id="google",
        name="Google Workspace / Gmail",
        imap=_s("imap.gmail.com", 993, TLS),
        smtp=_s("smtp.gmail.com", 465, TLS),
        auth=("oauth2", "app-password"),
        note=(
            "Google needs OAuth2, or an app password (which requires 2-Step Verification); "
            "the normal account password is refused."
        ),
        domains=("gmail.com", "googlemail.com"),
        mx_suffixes=("aspmx.l.google.com", "googlemail.com", "smtp.google.com"),
    ),
    Provider(
        id="yahoo",
        name="Yahoo Mail",
        imap=_s("imap.mail.yahoo.com", 993, TLS),
        smtp=_s("smtp.mail.yahoo.com", 465, TLS),
        auth=("oauth2", "app-password"),
        note="Yahoo needs an app password (Account security > Generate app password) or OAuth2.",
        domains=(
            "yahoo.com",
            "ymail.com",
            "rocketmail.com",
            "yahoo.co.uk",
            "yahoo.fr",
            "yahoo.de",
            "yahoo.it",
            "yahoo.es",
            "yahoo.ca",
            "yahoo.com.au",
            "yahoo.co.in",
            "yahoo.com.br",
        ),
        mx_suffixes=("yahoodns.net",),
    ),
    Provider(
        id="aol",
        name="AOL Mail",
        imap=_s("imap.aol.com", 993, TLS),
        smtp=_s("smtp.aol.com", 465, TLS),
        auth=("oauth2", "app-password"),
        note="AOL needs an app password (Account security > Generate app password) or OAuth2.",
        domains=("aol.com", "aim.com", "aol.co.uk", "aol.de", "aol.fr", "love.com", "ygm.com"),
    ),
    Provider(
        id="icloud",
        name="iCloud Mail",
        imap=_s("imap.mail.me.com", 993, TLS),
        smtp=_s("smtp.mail.me.com", 587, STARTTLS),
        auth=("app-password",),
        note="iCloud needs an app-specific password (appleid.apple.com > Sign-In and Security).",
        domains=("icloud.com", "me.com", "mac.com"),
        mx_suffixes=("mail.icloud.com",),
    ),
    Provider(
        id="zoho",
        name="Zoho Mail",
        imap=_s("imap.zoho.com", 993, TLS),
        smtp=_s("smtp.zoho.com", 465, TLS),
        auth=("password", "app-password", "oauth2"),
        note=(
            "IMAP access must be enabled in Zoho Mail settings; with two-factor "
            "authentication on, use an app-specific password."
        ),
        domains=("zoho.com", "zohomail.com"),
        mx_suffixes=("zoho.com",),
    ),
    Provider(
        id="zoho-eu",
        name="Zoho Mail (EU)",
        imap=_s("imap.zoho.eu", 993, TLS),
        smtp=_s("smtp.zoho.eu", 465, TLS),
        auth=("password", "app-password", "oauth2"),
        note=(
            "IMAP access must be enabled in Zoho Mail settings; with two-factor "
            "authentication on, use an app-specific password."
        ),
        domains=("zoho.eu", "zohomail.eu"),
        mx_suffixes=("zoho.eu",),
    ),
    Provider(
        id="fastmail",
        name="Fastmail",
        imap=_s("imap.fastmail.com", 993, TLS),
        smtp=_s("smtp.fastmail.com", 465, TLS),
        auth=("app-password", "oauth2"),
        note="Fastmail needs an app password (Settings > Privacy & Security > App passwords).",
        domains=(
            "fastmail.com",
            "fastmail.fm",
            "fastmail.cn",
            "fastmail.co.uk",
            "fastmail.de",
            "fastmail.net",
            "fastmail.org",
            "fastmail.us",
            "fastmail.to",
            "messagingengine.com",
        ),
        mx_suffixes=("messagingengine.com",),
    ),
    Provider(
        id="gmx",
        name="GMX",
        imap=_s("imap.gmx.net", 993, TLS),
        smtp=_s("mail.gmx.net", 587, STARTTLS),
        auth=("password",),
        note="Enable 'POP3/IMAP access' in the GMX mail settings first.",
        domains=("gmx.net", "gmx.de", "gmx.at", "gmx.ch", "gmx.eu"),
        mx_suffixes=("gmx.net",),
    ),
    Provider(
        id="gmx.com",
        name="GMX (international)",
        imap=_s("imap.gmx.com", 993, TLS),
        smtp=_s("mail.gmx.com", 587, STARTTLS),
        auth=("password",),
        note="Enable 'POP3/IMAP access' in the GMX mail settings first.",
        domains=("gmx.com", "gmx.us", "gmx.co.uk", "gmx.fr", "gmx.es"),
        mx_suffixes=("gmx.com",),
    ),
    Provider(
        id="web.de",
        name="WEB.DE",
        imap=_s("imap.web.de", 993, TLS),
        smtp=_s("smtp.web.de", 587, STARTTLS),
        auth=("password",),
        note="Enable 'POP3/IMAP access' in the WEB.DE mail settings first.",
        domains=("web.de",),
        mx_suffixes=("web.de",),
    ),
    Provider(
        id="yandex",
        name="Yandex Mail",
        imap=_s("imap.yandex.com", 993, TLS),
        smtp=_s("smtp.yandex.com", 465, TLS),
        auth=("app-password", "oauth2"),
        note="Yandex needs an app password (Yandex ID > Security > App passwords).",
        domains=("yandex.com", "yandex.ru", "ya.ru", "yandex.ua", "yandex.by", "yandex.kz"),
        mx_suffixes=("yandex.net", "yandex.ru"),
    ),
    Provider(
        id="mail.ru",
        name="Mail.ru",
        imap=_s("imap.mail.ru", 993, TLS),
        smtp=_s("smtp.mail.ru", 465, TLS),
        auth=("app-password",),
        note="Mail.ru needs an app password for mail programs.",
        domains=("mail.ru", "inbox.ru", "list.ru", "bk.ru"),
        mx_suffixes=("mail.ru",),
    ),
)

_BY_DOMAIN = {d: p for p in PROVIDERS for d in p.domains}


def provider_for_domain(domain: str) -> Provider | None:
    return _BY_DOMAIN.get(normalise_host(domain))


def provider_for_mx(mx_host: str) -> Provider | None:
    """Which provider runs this MX host, if it is one of the table's (longest suffix wins)."""
    host = normalise_host(mx_host)
    best: tuple[int, Provider] | None = None
    for provider in PROVIDERS:
        for suffix in provider.mx_suffixes:
            if host_in_domain(host, suffix) and (best is None or len(suffix) > best[0]):
                best = (len(suffix), provider)
    return best[1] if best else None


def is_provider_host(host: str) -> bool:
    """A host the table names: a password may go there (the user's provider asked for it)."""
    host = normalise_host(host)
    return any(host in p.hosts() for p in PROVIDERS)
