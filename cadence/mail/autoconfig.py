"""Thunderbird-style autoconfig: the ``clientConfig`` version 1.1 XML format and where to get it.

Where (tried by :mod:`cadence.mail.discovery`, all concurrently):

* ``https://autoconfig.<domain>/mail/config-v1.1.xml?emailaddress=<address>`` (the provider's
  own file; Thunderbird also tries plain http there, so do we, marking the answer insecure);
* ``https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml``;
* the ISP database, ``<base>/<domain>`` (Thunderbird's is https://autoconfig.thunderbird.net/v1.1/),
  by the address's domain and by the domain of its MX host.

The format: ``clientConfig/emailProvider`` with ``domain`` elements, ``incomingServer`` and
``outgoingServer`` elements (``hostname``, ``port``, ``socketType`` SSL|STARTTLS|plain,
``username``, ``authentication``), in order of preference.  ``%EMAILADDRESS%``,
``%EMAILLOCALPART%`` and ``%EMAILDOMAIN%`` stand for parts of the address.
"""

from __future__ import annotations

import json
import logging
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from cadence.mail.discovery_net import FetchResult, HttpFetcher
from cadence.mail.discovery_types import (
    DiscoveryError,
    ServerSetting,
    normalise_host,
    split_address,
    valid_host,
)
from cadence.mail.endpoints import Security

log = logging.getLogger("cadence.discovery")

DEFAULT_ISPDB_URL = "https://autoconfig.thunderbird.net/v1.1/"

# Thunderbird's authentication names -> ours.  "password-cleartext" is a password sent inside
# TLS (Cadence never sends one otherwise), "password-encrypted" is CRAM-MD5 and the like.
_AUTH_NAMES = {
    "password-cleartext": "password",
    "plain": "password",
    "password-encrypted": "password",
    "secure": "password",
    "oauth2": "oauth2",
    "ntlm": "ntlm",
    "gssapi": "gssapi",
    "client-ip-address": "client-ip",
    "tls-client-cert": "client-cert",
    "none": "none",
}


def parse_xml(body: bytes, what: str) -> ET.Element:
    """Parse untrusted XML: no DTDs or entities (billion laughs, external entities)."""
    upper = body.upper()
    if b"<!DOCTYPE" in upper or b"<!ENTITY" in upper:
        raise DiscoveryError(
            f"{what}: XML with a DOCTYPE or entities is refused", code="xml_forbidden"
        )
    try:
        return ET.fromstring(body)
    except ET.ParseError as exc:
        raise DiscoveryError(f"{what}: malformed XML ({exc})", code="xml_malformed") from exc


def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _text(element: ET.Element, name: str) -> str | None:
    for child in element:
        if local_name(child.tag) == name:
            return (child.text or "").strip()
    return None


@dataclass(frozen=True)
class ServerEntry:
    """One ``incomingServer`` / ``outgoingServer`` element, placeholders filled in."""

    type: str  # "imap", "pop3", "smtp", ...
    setting: ServerSetting | None  # None for socketType plain: never used
    socket_type: str
    username: str
    auth: tuple[str, ...]


@dataclass
class ClientConfig:
    provider_id: str | None
    display_name: str | None
    domains: list[str]
    imap: list[ServerEntry] = field(default_factory=list)
    smtp: list[ServerEntry] = field(default_factory=list)
    oauth2: bool = False

    def best_imap(self) -> ServerEntry | None:
        """Implicit TLS first (RFC 8314 prefers it), then STARTTLS; plain never."""
        usable = [e for e in self.imap if e.setting is not None]
        usable.sort(key=lambda e: 0 if e.setting and e.setting.security is Security.TLS else 1)
        return usable[0] if usable else None

    def best_smtp(self) -> ServerEntry | None:
        usable = [e for e in self.smtp if e.setting is not None]
        return usable[0] if usable else None  # the file's order is the provider's preference


def _fill(template: str, address: str) -> str:
    local, domain = split_address(address)
    return (
        template.replace("%EMAILADDRESS%", address)
        .replace("%EMAILLOCALPART%", local)
        .replace("%EMAILDOMAIN%", domain)
    )


def _server(element: ET.Element, address: str, kind: str) -> ServerEntry:
    type_ = (element.get("type") or "").lower()
    host = _fill(_text(element, "hostname") or "", address)
    host = normalise_host(host)
    if not valid_host(host):
        raise DiscoveryError(f"autoconfig: bad hostname {host!r} in {kind}", code="xml_invalid")
    port_text = _text(element, "port") or ""
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise DiscoveryError(f"autoconfig: bad port {port_text!r} for {host}", code="xml_invalid")
    port = int(port_text)
    socket_type = (_text(element, "socketType") or "plain").upper()
    setting: ServerSetting | None
    if socket_type == "SSL":
        setting = ServerSetting(host, port, Security.TLS)
    elif socket_type == "STARTTLS":
        setting = ServerSetting(host, port, Security.STARTTLS)
    else:  # plain: listed so the user sees it, never connected to
        setting = None
    username = _fill(_text(element, "username") or "%EMAILADDRESS%", address)
    auth = tuple(
        dict.fromkeys(
            _AUTH_NAMES.get((c.text or "").strip().lower(), (c.text or "").strip().lower())
            for c in element
            if local_name(c.tag) == "authentication" and (c.text or "").strip()
        )
    )
    return ServerEntry(type_, setting, socket_type, username, auth)


def parse_client_config(body: bytes, address: str, what: str = "autoconfig") -> ClientConfig:
    root = parse_xml(body, what)
    if local_name(root.tag) != "clientConfig":
        raise DiscoveryError(
            f"{what}: expected <clientConfig>, got <{local_name(root.tag)}>", code="xml_invalid"
        )
    provider = next((c for c in root if local_name(c.tag) == "emailProvider"), None)
    if provider is None:
        raise DiscoveryError(f"{what}: no <emailProvider>", code="xml_invalid")
    config = ClientConfig(
        provider_id=provider.get("id"),
        display_name=_text(provider, "displayName"),
        domains=[normalise_host(c.text or "") for c in provider if local_name(c.tag) == "domain"],
        oauth2=any(local_name(c.tag) == "oAuth2" for c in root),
    )
    for element in provider:
        name = local_name(element.tag)
        if name == "incomingServer" and (element.get("type") or "").lower() == "imap":
            config.imap.append(_server(element, address, "incomingServer"))
        elif name == "outgoingServer" and (element.get("type") or "").lower() == "smtp":
            config.smtp.append(_server(element, address, "outgoingServer"))
    if not config.imap and not config.smtp:
        raise DiscoveryError(f"{what}: no IMAP or SMTP server listed", code="xml_invalid")
    return config


# -- fetching ---------------------------------------------------------------------------------


def autoconfig_urls(address: str) -> list[tuple[str, str, bool]]:
    """(source name, URL, plain http?) for the domain's own autoconfig files."""
    _, domain = split_address(address)
    q = quote(address, safe="@")
    return [
        ("autoconfig", f"https://autoconfig.{domain}/mail/config-v1.1.xml?emailaddress={q}", False),
        ("autoconfig", f"http://autoconfig.{domain}/mail/config-v1.1.xml?emailaddress={q}", True),
        (
            "autoconfig-wellknown",
            f"https://{domain}/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress={q}",
            False,
        ),
    ]


async def fetch_client_config(
    fetcher: HttpFetcher, url: str, address: str, *, allow_http: bool = False
) -> tuple[ClientConfig, FetchResult]:
    result = await fetcher.fetch(url, allow_http=allow_http)
    if result.status != 200:
        raise DiscoveryError(f"{url} answered HTTP {result.status}", code="http_status")
    return parse_client_config(result.body, address, what=url), result


@dataclass
class IspdbCache:
    """ISP database answers by domain, in memory and optionally on disk (JSON files).

    Negative answers (the database has no entry) are cached too, for a shorter time.
    """

    directory: Path | None = None
    ttl_s: float = 7 * 24 * 3600
    negative_ttl_s: float = 24 * 3600
    _memory: dict[tuple[str, str], tuple[float, bytes | None]] = field(default_factory=dict)

    def _path(self, base: str, domain: str) -> Path | None:
        if self.directory is None:
            return None
        safe = quote(f"{base}|{domain}", safe="")
        return self.directory / f"{safe}.json"

    def get(self, base: str, domain: str) -> tuple[bool, bytes | None]:
        """(hit, body); body None is a cached "not in the database"."""
        now = time.time()
        entry = self._memory.get((base, domain))
        if entry is None and (path := self._path(base, domain)) and path.exists():
            try:
                data = json.loads(path.read_text())
                body = data["body"].encode("utf-8") if data["body"] is not None else None
                entry = (float(data["at"]), body)
                self._memory[(base, domain)] = entry
            except (OSError, ValueError, KeyError):
                entry = None
        if entry is None:
            return False, None
        at, body = entry
        if now - at > (self.ttl_s if body is not None else self.negative_ttl_s):
            return False, None
        return True, body

    def put(self, base: str, domain: str, body: bytes | None) -> None:
        now = time.time()
        self._memory[(base, domain)] = (now, body)
        if (path := self._path(base, domain)) is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                text = body.decode("utf-8", "replace") if body is not None else None
                path.write_text(json.dumps({"at": now, "body": text}))
            except OSError as exc:  # a cache that cannot be written is only slower
                log.warning("ISPDB cache not written: %s", exc)


DEFAULT_ISPDB_CACHE = IspdbCache()


async def fetch_ispdb(
    fetcher: HttpFetcher,
    base_url: str,
    lookup_domain: str,
    address: str,
    cache: IspdbCache,
) -> tuple[ClientConfig, str] | None:
    """The ISP database's entry for ``lookup_domain`` (None when it has none), and its URL."""
    base = base_url if base_url.endswith("/") else base_url + "/"
    url = base + quote(lookup_domain)
    hit, body = cache.get(base, lookup_domain)
    if not hit:
        result = await fetcher.fetch(url)
        if result.status == 404:
            body = None
        elif result.status != 200:
            raise DiscoveryError(f"{url} answered HTTP {result.status}", code="http_status")
        else:
            body = result.body
            parse_client_config(body, address, what=url)  # only cache what parses
        cache.put(base, lookup_domain, body)
    if body is None:
        return None
    return parse_client_config(body, address, what=url), url


def mx_lookup_domains(mx_host: str, domain: str) -> list[str]:
    """Domains to look the MX host up by in the ISP database.

    Thunderbird uses the MX host's registrable domain; without a public-suffix list we try the
    host minus its first label and the last two labels (three when the second-level label is
    a short public one such as ``co.uk``).
    """
    labels = normalise_host(mx_host).split(".")
    out: list[str] = []
    if len(labels) > 2:
        out.append(".".join(labels[1:]))
    n = 3 if len(labels) >= 3 and labels[-2] in ("co", "com", "net", "org", "ne", "or", "ac") else 2
    if len(labels) >= n:
        out.append(".".join(labels[-n:]))
    return [d for d in dict.fromkeys(out) if d != domain and "." in d]
