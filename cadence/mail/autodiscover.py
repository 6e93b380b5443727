"""Exchange Autodiscover, the "plain old XML" (POX) protocol, for IMAP and SMTP settings.

Where (tried by :mod:`cadence.mail.discovery`, all concurrently):

1. ``https://<domain>/autodiscover/autodiscover.xml``;
2. ``https://autodiscover.<domain>/autodiscover/autodiscover.xml``;
3. the HTTP-redirect method: ``GET http://autodiscover.<domain>/autodiscover/autodiscover.xml``
   answered by a redirect to an https URL, which is then asked.  The redirect came over plain
   http, so the answer is marked insecure (Outlook asks the user before following it);
4. the SRV record ``_autodiscover._tcp.<domain>`` naming the host and port to ask.

The request is a POST of an ``Autodiscover/Request`` with the address and the Outlook response
schema (2006a).  The answer's ``Account`` either gives ``Protocol`` entries (we read ``Type``
IMAP and SMTP: ``Server``, ``Port``, ``SSL``, ``Encryption``, ``LoginName``) or redirects:
``Action`` ``redirectUrl`` (ask another https URL) or ``redirectAddr`` (ask again for another
address).  Both are bounded and shown.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

import httpx

from cadence.mail.autoconfig import local_name, parse_xml
from cadence.mail.discovery_net import HttpFetcher
from cadence.mail.discovery_types import (
    DiscoveryError,
    ServerSetting,
    host_in_domain,
    normalise_host,
    split_address,
    valid_host,
)
from cadence.mail.endpoints import Security

REQUEST_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
RESPONSE_SCHEMA = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
MAX_AUTODISCOVER_REDIRECTS = 5  # redirectUrl / redirectAddr hops, on top of HTTP redirects


def request_body(address: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<Autodiscover xmlns="{REQUEST_NS}">\n'
        "  <Request>\n"
        f"    <EMailAddress>{escape(address)}</EMailAddress>\n"
        f"    <AcceptableResponseSchema>{RESPONSE_SCHEMA}</AcceptableResponseSchema>\n"
        "  </Request>\n"
        "</Autodiscover>\n"
    ).encode()


def autodiscover_urls(domain: str) -> list[tuple[str, str]]:
    return [
        ("autodiscover", f"https://{domain}/autodiscover/autodiscover.xml"),
        ("autodiscover-subdomain", f"https://autodiscover.{domain}/autodiscover/autodiscover.xml"),
    ]


def redirect_method_url(domain: str) -> str:
    return f"http://autodiscover.{domain}/autodiscover/autodiscover.xml"


@dataclass
class ProtocolEntry:
    type: str
    setting: ServerSetting | None  # None when SSL is off: never used
    login_name: str | None


@dataclass
class AutodiscoverAnswer:
    imap: list[ProtocolEntry] = field(default_factory=list)
    smtp: list[ProtocolEntry] = field(default_factory=list)
    display_name: str | None = None
    redirect_url: str | None = None
    redirect_addr: str | None = None


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in element if local_name(c.tag) == name]


def _child_text(element: ET.Element, name: str) -> str | None:
    found = _children(element, name)
    return (found[0].text or "").strip() if found else None


def _security(
    kind: str, port: int, ssl_flag: str | None, encryption: str | None
) -> Security | None:
    enc = (encryption or "").strip().upper()
    if enc == "SSL":
        return Security.TLS
    if enc == "TLS":
        return Security.STARTTLS
    if enc == "NONE":
        return None
    if (ssl_flag or "on").strip().lower() != "on":  # SSL defaults to on in the schema
        return None
    # "SSL on" says only "encrypted"; the port tells implicit TLS from STARTTLS (RFC 8314).
    if kind == "IMAP":
        return Security.STARTTLS if port == 143 else Security.TLS
    return Security.STARTTLS if port in (25, 587) else Security.TLS


def parse_response(body: bytes, what: str = "autodiscover") -> AutodiscoverAnswer:
    root = parse_xml(body, what)
    if local_name(root.tag) != "Autodiscover":
        raise DiscoveryError(
            f"{what}: expected <Autodiscover>, got <{local_name(root.tag)}>", code="xml_invalid"
        )
    response = next(iter(_children(root, "Response")), None)
    if response is None:
        raise DiscoveryError(f"{what}: no <Response>", code="xml_invalid")
    error = next(iter(_children(response, "Error")), None)
    if error is not None:
        code = _child_text(error, "ErrorCode") or "?"
        message = _child_text(error, "Message") or ""
        raise DiscoveryError(
            f"{what}: Autodiscover error {code} {message}".strip(), code="autodiscover_error"
        )
    account = next(iter(_children(response, "Account")), None)
    if account is None:
        raise DiscoveryError(f"{what}: no <Account>", code="xml_invalid")
    answer = AutodiscoverAnswer()
    user = next(iter(_children(response, "User")), None)
    if user is not None:
        answer.display_name = _child_text(user, "DisplayName")
    action = (_child_text(account, "Action") or "settings").strip()
    if action == "redirectUrl":
        answer.redirect_url = _child_text(account, "RedirectUrl")
        if not answer.redirect_url:
            raise DiscoveryError(f"{what}: redirectUrl without a URL", code="xml_invalid")
        return answer
    if action == "redirectAddr":
        answer.redirect_addr = _child_text(account, "RedirectAddr")
        if not answer.redirect_addr:
            raise DiscoveryError(f"{what}: redirectAddr without an address", code="xml_invalid")
        split_address(answer.redirect_addr)
        return answer
    for protocol in _children(account, "Protocol"):
        kind = (_child_text(protocol, "Type") or "").upper()
        if kind not in ("IMAP", "SMTP"):
            continue  # EXCH, EXPR, WEB, POP3: not ours
        host = normalise_host(_child_text(protocol, "Server") or "")
        port_text = _child_text(protocol, "Port") or ""
        if not valid_host(host) or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise DiscoveryError(
                f"{what}: bad {kind} Server/Port {host!r}:{port_text!r}", code="xml_invalid"
            )
        port = int(port_text)
        security = _security(
            kind, port, _child_text(protocol, "SSL"), _child_text(protocol, "Encryption")
        )
        entry = ProtocolEntry(
            kind,
            ServerSetting(host, port, security) if security else None,
            _child_text(protocol, "LoginName") or None,
        )
        (answer.imap if kind == "IMAP" else answer.smtp).append(entry)
    if not answer.imap and not answer.smtp:
        raise DiscoveryError(f"{what}: no IMAP or SMTP Protocol entry", code="autodiscover_empty")
    return answer


@dataclass
class AutodiscoverResult:
    answer: AutodiscoverAnswer
    address: str  # the address finally asked about (after redirectAddr)
    url: str
    redirects: list[str]
    insecure: bool


async def ask(
    fetcher: HttpFetcher,
    url: str,
    address: str,
    *,
    redirects: list[str] | None = None,
    insecure: bool = False,
    password: str | None = None,
    own_domain: str | None = None,
) -> AutodiscoverResult:
    """POST the request to ``url``, following Autodiscover's own redirects (bounded).

    Exchange usually answers 401 to an anonymous request.  Then, and only when ``password``
    is given, the request is repeated with HTTP Basic authentication (the address and the
    password) -- and only to an https URL on ``own_domain``, the user's own domain.
    """
    hops = list(redirects or [])
    seen: set[tuple[str, str]] = set()
    while True:
        if (url, address.lower()) in seen or len(seen) > MAX_AUTODISCOVER_REDIRECTS:
            raise DiscoveryError(
                f"Autodiscover redirect loop ({' -> '.join(hops)})",
                code="autodiscover_redirect_loop",
                detail={"redirects": hops},
            )
        seen.add((url, address.lower()))
        body = request_body(address)
        headers = {"Content-Type": "text/xml; charset=utf-8"}
        result = await fetcher.fetch(url, method="POST", content=body, headers=headers)
        if result.status == 401:
            host = httpx.URL(result.url).host
            if password is None or own_domain is None or not host_in_domain(host, own_domain):
                raise DiscoveryError(
                    f"{result.url} requires authentication",
                    code="autodiscover_auth_required",
                    hint=(
                        "Exchange Autodiscover needs your password: run again with "
                        "--password-env (it is sent only to your own domain, over https)."
                        if password is None
                        else f"{host} is outside {own_domain}: the password is not sent there."
                    ),
                )
            result = await fetcher.fetch(
                url,
                method="POST",
                content=body,
                headers=headers,
                basic_auth=(address, password),
                auth_domain=own_domain,
            )
            if result.status == 401:
                raise DiscoveryError(
                    f"{result.url} refused the address and password",
                    code="autodiscover_auth_failed",
                    hint="Check the password; some servers want DOMAIN\\user as the login.",
                )
        hops.extend(result.redirects)
        if result.status != 200:
            raise DiscoveryError(f"{result.url} answered HTTP {result.status}", code="http_status")
        answer = parse_response(result.body, what=result.url)
        if answer.redirect_url:
            if not answer.redirect_url.lower().startswith("https://"):
                raise DiscoveryError(
                    f"Autodiscover redirectUrl to a non-https URL {answer.redirect_url!r}",
                    code="http_downgrade",
                )
            url = answer.redirect_url
            hops.append(url)
            continue
        if answer.redirect_addr:
            address = answer.redirect_addr
            hops.append(f"address:{address}")
            continue
        return AutodiscoverResult(answer, address, result.url, hops, insecure or result.insecure)


async def redirect_method(fetcher: HttpFetcher, domain: str, address: str) -> AutodiscoverResult:
    """The HTTP-redirect method: an unauthenticated http redirect names the https URL to ask."""
    first = redirect_method_url(domain)
    result = await fetcher.fetch(first, allow_http=True, follow_redirects=False)
    if result.location is None:
        raise DiscoveryError(
            f"{first} answered HTTP {result.status}, not a redirect",
            code="autodiscover_no_redirect",
        )
    if not result.location.lower().startswith("https://"):
        raise DiscoveryError(
            f"{first} redirected to a non-https URL {result.location!r}", code="http_downgrade"
        )
    # The https URL came from a plain-http answer: no password goes there automatically.
    return await ask(fetcher, result.location, address, redirects=[result.location], insecure=True)


def srv_url(target: str, port: int) -> str:
    return (
        f"https://{target}/autodiscover/autodiscover.xml"
        if port == 443
        else f"https://{target}:{port}/autodiscover/autodiscover.xml"
    )
