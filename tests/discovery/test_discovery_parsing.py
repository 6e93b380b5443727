"""Parsing and tables, without the network: clientConfig, Autodiscover POX, providers."""

from __future__ import annotations

import pytest
from discovery_helpers import autodiscover_settings, client_config

from cadence.mail.autoconfig import mx_lookup_domains, parse_client_config
from cadence.mail.autodiscover import parse_response
from cadence.mail.discovery_net import parse_hostport
from cadence.mail.discovery_types import DiscoveryError, ServerSetting, split_address
from cadence.mail.endpoints import Security
from cadence.mail.providers import is_provider_host, provider_for_domain, provider_for_mx


@pytest.mark.parametrize(
    ("mx", "provider_id"),
    [
        ("contoso-com.mail.protection.outlook.com", "microsoft365"),
        ("hotmail-com.olc.protection.outlook.com", "outlook.com"),
        ("aspmx.l.google.com.", "google"),
        ("ALT2.ASPMX.L.GOOGLE.COM", "google"),
        ("aspmx3.googlemail.com", "google"),
        ("smtp.google.com", "google"),
        ("mx01.mail.icloud.com", "icloud"),
        ("mta5.am0.yahoodns.net", "yahoo"),
        ("mx.zoho.eu", "zoho-eu"),
        ("mx2.zoho.com", "zoho"),
        ("in1-smtp.messagingengine.com", "fastmail"),
        ("mx00.gmx.net", "gmx"),
        ("mx-ha03.web.de", "web.de"),
        ("mx.yandex.net", "yandex"),
    ],
)
def test_provider_detection_from_mx(mx: str, provider_id: str) -> None:
    provider = provider_for_mx(mx)
    assert provider is not None and provider.id == provider_id


@pytest.mark.parametrize(
    "mx", ["mail.example.com", "outlook.com.evil.test", "google.com", "notgooglemail.com"]
)
def test_other_mx_hosts_are_not_providers(mx: str) -> None:
    assert provider_for_mx(mx) is None


def test_provider_table_says_what_sign_in_is_needed() -> None:
    gmail = provider_for_domain("GMAIL.com")
    assert gmail is not None and gmail.auth == ("oauth2", "app-password")
    assert "app password" in gmail.note
    yahoo = provider_for_domain("yahoo.co.uk")
    assert yahoo is not None and "app password" in yahoo.note
    outlook = provider_for_domain("hotmail.com")
    assert outlook is not None and outlook.auth == ("oauth2",)
    assert is_provider_host("IMAP.gmail.com") and not is_provider_host("imap.gmail.com.evil.test")


def test_client_config_with_only_plaintext_servers_gives_nothing_usable() -> None:
    config = parse_client_config(
        client_config(
            domain="old.test",
            imap=[("mail.old.test", 143, "plain")],
            smtp=[("mail.old.test", 25, "plain")],
        ),
        "a@old.test",
    )
    assert config.best_imap() is None and config.best_smtp() is None
    assert [e.socket_type for e in config.imap] == ["PLAIN"]


@pytest.mark.parametrize(
    "body",
    [
        b"<clientConfig/>",
        b"<notClientConfig><emailProvider/></notClientConfig>",
        client_config(domain="x.test", imap=[("bad host!", 993, "SSL")]),
        client_config(domain="x.test", imap=[("imap.x.test", 99999, "SSL")]),
        client_config(domain="x.test"),  # neither IMAP nor SMTP
    ],
)
def test_invalid_client_configs_are_refused(body: bytes) -> None:
    with pytest.raises(DiscoveryError) as info:
        parse_client_config(body, "a@x.test")
    assert info.value.code in ("xml_invalid", "xml_malformed")


def test_autodiscover_ssl_and_encryption_mapping() -> None:
    answer = parse_response(
        autodiscover_settings(
            imap=("imap.x.test", 143, "on"),
            smtp=("smtp.x.test", 465, "on"),
            login="jdoe",
        )
    )
    assert answer.imap[0].setting == ServerSetting("imap.x.test", 143, Security.STARTTLS)
    assert answer.smtp[0].setting == ServerSetting("smtp.x.test", 465, Security.TLS)
    assert answer.imap[0].login_name == "jdoe"
    off = parse_response(autodiscover_settings(imap=("imap.x.test", 143, "off")))
    assert off.imap[0].setting is None  # never used: no encryption
    explicit = parse_response(
        autodiscover_settings(imap=("imap.x.test", 993, "on"), encryption={"IMAP": "None"})
    )
    assert explicit.imap[0].setting is None


def test_mx_lookup_domains() -> None:
    assert mx_lookup_domains("mx01.mail.hoster.test", "corp.test") == [
        "mail.hoster.test",
        "hoster.test",
    ]
    assert mx_lookup_domains("mx.hoster.co.uk", "corp.test") == ["hoster.co.uk"]
    assert mx_lookup_domains("mx.corp.test", "corp.test") == []


def test_addresses_and_resolver_settings() -> None:
    assert split_address(" Jane@Example.COM ") == ("Jane", "example.com")
    for bad in ("no-at-sign", "@example.com", "a@", "a@localhost", "a@exa mple.com"):
        with pytest.raises(DiscoveryError):
            split_address(bad)
    assert parse_hostport("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_hostport("[::1]:53") == ("::1", 53)
    assert parse_hostport("10.0.0.1") == ("10.0.0.1", 53)
    with pytest.raises(DiscoveryError):
        parse_hostport("127.0.0.1:http")
