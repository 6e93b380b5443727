"""Helpers for the discovery tests: DNS zones with clean-up, and the XML documents served
(written for the tests, not copied from anywhere)."""

from __future__ import annotations

from cadence.testing.dns_server import DnsTestServer

ISPDB_HOST = "ispdb.test"


class Zones:
    """The session's DNS server, with per-test clean-up of the names a test adds."""

    def __init__(self, server: DnsTestServer) -> None:
        self.server = server
        self.names: set[str] = set()

    @property
    def address(self) -> str:
        return self.server.address

    def add(self, name: str, rdtype: str, *rdatas: str) -> Zones:
        self.names.add(name)
        self.server.add(name, rdtype, *rdatas)
        return self

    def local(self, *names: str) -> Zones:
        """A records pointing each name at 127.0.0.1."""
        for name in names:
            self.add(name, "A", "127.0.0.1")
        return self

    def servfail(self, name: str) -> Zones:
        self.names.add(name)
        self.server.servfail(name)
        return self

    def delay(self, name: str, seconds: float) -> Zones:
        self.names.add(name)
        self.server.delay(name, seconds)
        return self

    def cleanup(self) -> None:
        for name in self.names:
            self.server.remove(name)
        self.names.clear()


def client_config(
    *,
    domain: str,
    imap: list[tuple[str, int, str]] | None = None,
    smtp: list[tuple[str, int, str]] | None = None,
    username: str = "%EMAILADDRESS%",
    auth: str = "password-cleartext",
    display: str = "Example Mail",
    oauth2: bool = False,
) -> bytes:
    """A clientConfig v1.1 document; servers are (hostname, port, socketType)."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<clientConfig version="1.1">',
        f'  <emailProvider id="{domain}">',
        f"    <domain>{domain}</domain>",
        f"    <displayName>{display}</displayName>",
        '    <incomingServer type="pop3"><hostname>pop.%EMAILDOMAIN%</hostname>'
        "<port>995</port><socketType>SSL</socketType></incomingServer>",
    ]
    for host, port, sock in imap or []:
        parts.append(
            f'    <incomingServer type="imap"><hostname>{host}</hostname><port>{port}</port>'
            f"<socketType>{sock}</socketType><authentication>{auth}</authentication>"
            f"<username>{username}</username></incomingServer>"
        )
    for host, port, sock in smtp or []:
        parts.append(
            f'    <outgoingServer type="smtp"><hostname>{host}</hostname><port>{port}</port>'
            f"<socketType>{sock}</socketType><authentication>{auth}</authentication>"
            f"<username>{username}</username></outgoingServer>"
        )
    parts.append("  </emailProvider>")
    if oauth2:
        parts.append("  <oAuth2><issuer>login.example.test</issuer><scope>mail</scope></oAuth2>")
    parts.append("</clientConfig>")
    return "\n".join(parts).encode()


def autodiscover_settings(
    *,
    imap: tuple[str, int, str] | None = None,  # (server, port, SSL on/off)
    smtp: tuple[str, int, str] | None = None,
    login: str | None = None,
    encryption: dict[str, str] | None = None,  # "IMAP"/"SMTP" -> Encryption value
    display: str = "Jane Rep",
) -> bytes:
    protocols = []
    for kind, entry in (("IMAP", imap), ("SMTP", smtp)):
        if entry is None:
            continue
        host, port, ssl = entry
        enc = (encryption or {}).get(kind)
        protocols.append(
            "<Protocol>"
            f"<Type>{kind}</Type><Server>{host}</Server><Port>{port}</Port>"
            + (f"<LoginName>{login}</LoginName>" if login else "")
            + f"<SPA>off</SPA><SSL>{ssl}</SSL>"
            + (f"<Encryption>{enc}</Encryption>" if enc else "")
            + "<AuthRequired>on</AuthRequired></Protocol>"
        )
    protocols.insert(
        0,
        "<Protocol><Type>EXCH</Type><Server>ex01.internal</Server></Protocol>",
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">'
        '<Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">'
        f"<User><DisplayName>{display}</DisplayName></User>"
        "<Account><AccountType>email</AccountType><Action>settings</Action>"
        + "".join(protocols)
        + "</Account></Response></Autodiscover>"
    ).encode()


def autodiscover_redirect(*, url: str | None = None, address: str | None = None) -> bytes:
    if url:
        account = f"<Action>redirectUrl</Action><RedirectUrl>{url}</RedirectUrl>"
    else:
        account = f"<Action>redirectAddr</Action><RedirectAddr>{address}</RedirectAddr>"
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">'
        '<Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">'
        f"<Account><AccountType>email</AccountType>{account}</Account></Response></Autodiscover>"
    ).encode()


def autodiscover_error(
    code: str = "500", message: str = "The email address can't be found."
) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">'
        '<Response><Error Time="10:00:00" Id="1">'
        f"<ErrorCode>{code}</ErrorCode><Message>{message}</Message>"
        "</Error></Response></Autodiscover>"
    ).encode()
