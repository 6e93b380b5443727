"""Each discovery source against local servers: DNS, HTTPS and HTTP on loopback.

Probing is switched off here (``probe=False``) so each test looks at what the source said;
probing is tested against the Dovecot test bed in test_discovery_probe.py.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from pathlib import Path

import trustme
from discovery_helpers import (
    ISPDB_HOST,
    Zones,
    autodiscover_error,
    autodiscover_redirect,
    autodiscover_settings,
    client_config,
)

from cadence.mail.autoconfig import IspdbCache
from cadence.mail.discovery import DiscoveryOptions, DiscoveryResult, discover, password_allowed
from cadence.mail.discovery_types import ServerSetting
from cadence.mail.endpoints import Security
from cadence.testing.http_server import HttpTestServer, Reply, Request

Options = Callable[..., DiscoveryOptions]
AUTOCONFIG_PATH = "/mail/config-v1.1.xml"
WELLKNOWN_PATH = "/.well-known/autoconfig/mail/config-v1.1.xml"
AUTODISCOVER_PATH = "/autodiscover/autodiscover.xml"


def report(result: DiscoveryResult, name: str) -> dict[str, object]:
    for source in result.as_dict()["sources"]:
        if source["name"] == name:
            return source  # type: ignore[no-any-return]
    raise AssertionError(f"no report for {name}: {result.as_dict()['sources']}")


def only(result: DiscoveryResult, source: str) -> list[dict[str, object]]:
    return [c for c in result.as_dict()["candidates"] if c["source"] == source]


async def test_autoconfig_subdomain_fills_placeholders(
    zones: Zones, https_server: HttpTestServer, options: Options
) -> None:
    zones.local("autoconfig.acme.test")
    https_server.route(
        "autoconfig.acme.test",
        AUTOCONFIG_PATH,
        Reply(
            body=client_config(
                domain="acme.test",
                imap=[
                    ("imap.%EMAILDOMAIN%", 143, "STARTTLS"),
                    ("imap.%EMAILDOMAIN%", 993, "SSL"),
                    ("plain.%EMAILDOMAIN%", 143, "plain"),
                ],
                smtp=[("smtp.%EMAILDOMAIN%", 587, "STARTTLS"), ("smtp.acme.test", 465, "SSL")],
                username="%EMAILLOCALPART%",
                display="Acme Hosting",
            )
        ),
    )
    result = await discover(
        "Jane.Doe@ACME.test", options=options(sources={"autoconfig"}, probe=False)
    )
    assert result.address == "Jane.Doe@acme.test"
    (candidate,) = result.candidates
    assert candidate.source == "autoconfig"
    assert candidate.provider == "Acme Hosting"
    # Implicit TLS is preferred for IMAP (RFC 8314); SMTP keeps the file's order.
    assert (candidate.imap.host, candidate.imap.port, candidate.imap.security) == (  # type: ignore[union-attr]
        "imap.acme.test",
        993,
        Security.TLS,
    )
    assert (candidate.smtp.host, candidate.smtp.port, candidate.smtp.security) == (  # type: ignore[union-attr]
        "smtp.acme.test",
        587,
        Security.STARTTLS,
    )
    assert candidate.username == "Jane.Doe"
    assert candidate.auth == ["password"]
    assert not candidate.insecure_transport
    (request,) = https_server.requests_for("autoconfig.acme.test")
    assert request.path == AUTOCONFIG_PATH + "?emailaddress=Jane.Doe@acme.test"


async def test_wellknown_autoconfig_and_oauth2(
    zones: Zones, https_server: HttpTestServer, options: Options
) -> None:
    zones.local("wk.test")
    https_server.route(
        "wk.test",
        WELLKNOWN_PATH,
        Reply(
            body=client_config(
                domain="wk.test",
                imap=[("mail.wk.test", 993, "SSL")],
                smtp=[("mail.wk.test", 465, "SSL")],
                auth="OAuth2",
                oauth2=True,
            )
        ),
    )
    result = await discover(
        "a@wk.test", options=options(sources={"autoconfig-wellknown"}, probe=False)
    )
    (candidate,) = result.candidates
    assert candidate.source == "autoconfig-wellknown"
    assert candidate.auth == ["oauth2"]
    assert candidate.smtp is not None and candidate.smtp.security is Security.TLS


async def test_plain_http_autoconfig_is_marked_and_not_trusted_with_a_password(
    zones: Zones, http_server: HttpTestServer, options: Options
) -> None:
    zones.local("autoconfig.plainweb.test")
    http_server.route(
        "autoconfig.plainweb.test",
        AUTOCONFIG_PATH,
        Reply(
            body=client_config(
                domain="plainweb.test",
                imap=[("imap.plainweb.test", 993, "SSL")],
                smtp=[("smtp.plainweb.test", 465, "SSL")],
            )
        ),
    )
    result = await discover(
        "a@plainweb.test",
        options=options(sources={"autoconfig", "autoconfig-http"}, probe=False),
    )
    assert report(result, "autoconfig")["status"] == "error"  # nothing on https
    (candidate,) = result.candidates
    assert candidate.insecure_transport
    assert candidate.url and candidate.url.startswith("http://")
    allowed, why = password_allowed(candidate, "imap.plainweb.test", "plainweb.test")
    assert not allowed and "plain http" in why
    allowed, _ = password_allowed(
        candidate, "imap.plainweb.test", "plainweb.test", trust_hosts=["imap.plainweb.test"]
    )
    assert allowed


async def test_ispdb_by_domain_is_cached(
    zones: Zones, https_server: HttpTestServer, options: Options
) -> None:
    https_server.route(
        ISPDB_HOST,
        "/v1.1/isp.test",
        Reply(
            body=client_config(
                domain="isp.test",
                imap=[("imap.bigisp.test", 993, "SSL")],
                smtp=[("smtp.bigisp.test", 465, "SSL")],
                display="Big ISP",
            )
        ),
    )
    cache = IspdbCache()
    for _ in range(2):
        result = await discover(
            "a@isp.test", options=options(sources={"ispdb"}, probe=False, ispdb_cache=cache)
        )
        (candidate,) = result.candidates
        assert candidate.provider == "Big ISP"
        assert candidate.imap is not None and candidate.imap.host == "imap.bigisp.test"
    assert len(https_server.requests_for(ISPDB_HOST)) == 1  # the second came from the cache
    # A host of a provider found in the ISP database may receive the password.
    assert password_allowed(candidate, "imap.bigisp.test", "isp.test")[0]


async def test_ispdb_by_mx_domain(
    zones: Zones, https_server: HttpTestServer, options: Options
) -> None:
    zones.add("corp-on-isp.test", "MX", "10 mx01.mailhost.test.")
    https_server.route(
        ISPDB_HOST,
        "/v1.1/mailhost.test",
        Reply(
            body=client_config(
                domain="mailhost.test",
                imap=[("imap.mailhost.test", 993, "SSL")],
                smtp=[("smtp.mailhost.test", 587, "STARTTLS")],
            )
        ),
    )
    result = await discover(
        "a@corp-on-isp.test", options=options(sources={"ispdb", "ispdb-mx"}, probe=False)
    )
    assert report(result, "ispdb")["status"] == "empty"  # 404 for the domain itself
    (candidate,) = result.candidates
    assert candidate.source == "ispdb-mx"
    assert candidate.imap is not None and candidate.imap.host == "imap.mailhost.test"
    assert any("mx01.mailhost.test" in note for note in candidate.notes)


async def test_autodiscover_pox_on_the_domain(
    zones: Zones, https_server: HttpTestServer, options: Options
) -> None:
    zones.local("exch.test")
    https_server.route(
        "exch.test",
        AUTODISCOVER_PATH,
        Reply(
            body=autodiscover_settings(
                imap=("outlook.exch.test", 993, "on"),
                smtp=("outlook.exch.test", 587, "on"),
                login="EXCH\\jdoe",
            )
        ),
    )
    result = await discover(
        "jdoe@exch.test", options=options(sources={"autodiscover"}, probe=False)
    )
    (candidate,) = result.candidates
    assert candidate.source == "autodiscover"
    assert candidate.provider == "Exchange (Jane Rep)"
    assert candidate.imap == ServerSetting("outlook.exch.test", 993, Security.TLS)
    assert candidate.smtp is not None and candidate.smtp.security is Security.STARTTLS
    assert candidate.username == "EXCH\\jdoe"
    (request,) = https_server.requests_for("exch.test")
    assert request.method == "POST"
    assert b"<EMailAddress>jdoe@exch.test</EMailAddress>" in request.body
    assert b"responseschema/2006a" in request.body


async def test_autodiscover_subdomain_follows_redirect_addr_and_url(
    zones: Zones, https_server: HttpTestServer, options: Options
) -> None:
    zones.local("autodiscover.exch2.test", "autodiscover.hosted.test")
    https_server.route(
        "autodiscover.exch2.test",
        AUTODISCOVER_PATH,
        lambda req: Reply(
            body=autodiscover_redirect(address="jdoe@hosted.test")
            if b"jdoe@exch2.test" in req.body
            else autodiscover_redirect(
                url="https://autodiscover.hosted.test/autodiscover/autodiscover.xml"
            )
        ),
    )
    https_server.route(
        "autodiscover.hosted.test",
        AUTODISCOVER_PATH,
        Reply(
            body=autodiscover_settings(
                imap=("imap.hosted.test", 143, "on"),
                smtp=("smtp.hosted.test", 465, "on"),
                encryption={"IMAP": "TLS"},
            )
        ),
    )
    result = await discover(
        "jdoe@exch2.test", options=options(sources={"autodiscover-subdomain"}, probe=False)
    )
    (candidate,) = result.candidates
    assert candidate.imap is not None and candidate.imap.security is Security.STARTTLS
    assert candidate.smtp is not None and candidate.smtp.security is Security.TLS
    assert candidate.username == "jdoe@hosted.test"  # no LoginName: the redirected address
    assert candidate.redirects == [
        "address:jdoe@hosted.test",
        "https://autodiscover.hosted.test/autodiscover/autodiscover.xml",
    ]


async def test_autodiscover_http_redirect_method_is_marked_insecure(
    zones: Zones, https_server: HttpTestServer, http_server: HttpTestServer, options: Options
) -> None:
    zones.local("autodiscover.redir.test", "autodiscover.exchange-host.test")
    http_server.route(
        "autodiscover.redir.test",
        AUTODISCOVER_PATH,
        Reply.redirect("https://autodiscover.exchange-host.test/autodiscover/autodiscover.xml"),
    )
    https_server.route(
        "autodiscover.exchange-host.test",
        AUTODISCOVER_PATH,
        Reply(
            body=autodiscover_settings(
                imap=("imap.exchange-host.test", 993, "on"),
                smtp=("smtp.exchange-host.test", 587, "on"),
            )
        ),
    )
    result = await discover(
        "a@redir.test", options=options(sources={"autodiscover-redirect"}, probe=False)
    )
    (candidate,) = result.candidates
    assert candidate.insecure_transport
    assert candidate.redirects == [
        "https://autodiscover.exchange-host.test/autodiscover/autodiscover.xml"
    ]
    assert not password_allowed(candidate, "imap.exchange-host.test", "redir.test")[0]


async def test_autodiscover_srv_record(
    zones: Zones, https_server: HttpTestServer, options: Options
) -> None:
    zones.local("ad.provider.test")
    zones.add("_autodiscover._tcp.srvad.test", "SRV", f"0 0 {https_server.port} ad.provider.test.")
    https_server.route(
        "ad.provider.test",
        AUTODISCOVER_PATH,
        Reply(body=autodiscover_settings(imap=("imap.provider.test", 993, "on"))),
    )
    result = await discover(
        "a@srvad.test", options=options(sources={"autodiscover-srv"}, probe=False)
    )
    (candidate,) = result.candidates
    assert candidate.imap is not None and candidate.imap.host == "imap.provider.test"
    assert candidate.smtp is None
    assert candidate.url == f"https://ad.provider.test:{https_server.port}{AUTODISCOVER_PATH}"


async def test_autodiscover_error_response_is_that_sources_error(
    zones: Zones, https_server: HttpTestServer, options: Options
) -> None:
    zones.local("exch3.test")
    https_server.route("exch3.test", AUTODISCOVER_PATH, Reply(body=autodiscover_error()))
    result = await discover("a@exch3.test", options=options(sources={"autodiscover"}, probe=False))
    assert result.candidates == []
    error = report(result, "autodiscover")["error"]
    assert isinstance(error, dict) and error["code"] == "autodiscover_error"


async def test_rfc6186_srv_records(zones: Zones, options: Options) -> None:
    zones.add("_imaps._tcp.srv.test", "SRV", "10 1 993 imap.srv.test.", "0 1 10993 imap0.srv.test.")
    zones.add("_imap._tcp.srv.test", "SRV", "0 1 143 imap.srv.test.")
    zones.add("_submissions._tcp.srv.test", "SRV", "0 0 0 .")  # "." = not offered (RFC 6186)
    zones.add("_submission._tcp.srv.test", "SRV", "0 1 587 smtp.srv.test.")
    result = await discover("a@srv.test", options=options(sources={"srv"}, probe=False))
    (candidate,) = result.candidates
    assert candidate.imap == ServerSetting("imap0.srv.test", 10993, Security.TLS)
    assert candidate.smtp == ServerSetting("smtp.srv.test", 587, Security.STARTTLS)


async def test_malformed_xml_is_an_error_for_that_source_only(
    zones: Zones, https_server: HttpTestServer, options: Options
) -> None:
    zones.local("autoconfig.broken.test", "broken.test")
    https_server.route(
        "autoconfig.broken.test", AUTOCONFIG_PATH, Reply(body=b"<clientConfig><oops")
    )
    https_server.route(
        "broken.test",
        WELLKNOWN_PATH,
        Reply(
            body=b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><clientConfig>&a;'
            b"</clientConfig>"
        ),
    )
    https_server.route(
        "broken.test",
        AUTODISCOVER_PATH,
        Reply(body=autodiscover_settings(imap=("imap.broken.test", 993, "on"))),
    )
    result = await discover(
        "a@broken.test",
        options=options(
            sources={"autoconfig", "autoconfig-wellknown", "autodiscover"}, probe=False
        ),
    )
    assert report(result, "autoconfig")["error"]["code"] == "xml_malformed"  # type: ignore[index]
    assert report(result, "autoconfig-wellknown")["error"]["code"] == "xml_forbidden"  # type: ignore[index]
    assert [c.source for c in result.candidates] == ["autodiscover"]


async def test_redirect_loop_is_bounded_and_shown(
    zones: Zones, https_server: HttpTestServer, options: Options
) -> None:
    zones.local("autoconfig.loop.test")
    https_server.route(
        "autoconfig.loop.test",
        AUTOCONFIG_PATH,
        Reply.redirect("https://autoconfig.loop.test/a"),
    )
    https_server.route(
        "autoconfig.loop.test",
        "/a",
        Reply.redirect("https://autoconfig.loop.test/mail/config-v1.1.xml"),
    )
    started = time.monotonic()
    result = await discover("a@loop.test", options=options(sources={"autoconfig"}, probe=False))
    assert time.monotonic() - started < 3
    error = report(result, "autoconfig")["error"]
    assert isinstance(error, dict) and error["code"] == "http_redirect_loop"
    assert len(https_server.requests_for("autoconfig.loop.test")) <= 6
    # A chain of distinct URLs is also cut off after max_redirects.
    zones.local("autoconfig.chain.test")

    def chain(req: Request) -> Reply:
        n = int(req.route_path.rsplit("/", 1)[-1]) if req.route_path[-1].isdigit() else 0
        return Reply.redirect(f"https://autoconfig.chain.test/{n + 1}")

    https_server.route("autoconfig.chain.test", AUTOCONFIG_PATH, chain)
    for n in range(1, 20):
        https_server.route("autoconfig.chain.test", f"/{n}", chain)
    result = await discover(
        "a@chain.test", options=options(sources={"autoconfig"}, probe=False, max_redirects=3)
    )
    error = report(result, "autoconfig")["error"]
    assert isinstance(error, dict) and error["code"] == "http_redirect_loop"
    assert len(https_server.requests_for("autoconfig.chain.test")) == 4


async def test_oversized_answer_is_cut_off(
    zones: Zones, https_server: HttpTestServer, options: Options
) -> None:
    zones.local("autoconfig.huge.test")
    https_server.route("autoconfig.huge.test", AUTOCONFIG_PATH, Reply(body=b" " * 300_000))
    result = await discover("a@huge.test", options=options(sources={"autoconfig"}, probe=False))
    error = report(result, "autoconfig")["error"]
    assert isinstance(error, dict) and error["code"] == "http_too_large"


async def test_slow_servers_do_not_break_the_budget(
    zones: Zones, https_server: HttpTestServer, options: Options
) -> None:
    zones.local("autoconfig.slow.test", "slow.test")
    https_server.route(
        "autoconfig.slow.test",
        AUTOCONFIG_PATH,
        Reply(body=client_config(domain="slow.test", imap=[("a.slow.test", 993, "SSL")]), delay=30),
    )
    zones.delay("_imaps._tcp.slow.test", 30)  # a DNS answer that never comes in time
    https_server.route(
        "slow.test",
        AUTODISCOVER_PATH,
        Reply(body=autodiscover_settings(imap=("imap.slow.test", 993, "on"))),
    )
    started = time.monotonic()
    result = await discover(
        "a@slow.test",
        options=options(sources={"autoconfig", "srv", "autodiscover"}, probe=False, timeout=1.5),
    )
    elapsed = time.monotonic() - started
    assert elapsed < 2.5, elapsed
    assert result.elapsed_s < 2.5
    assert report(result, "autoconfig")["status"] == "timeout"
    assert report(result, "srv")["status"] == "timeout"
    assert [c.source for c in result.candidates] == ["autodiscover"]


async def test_nxdomain_and_servfail(zones: Zones, options: Options) -> None:
    result = await discover("a@nonexistent.test", options=options(probe=False, timeout=3))
    assert result.candidates == []
    mx = report(result, "mx")["error"]
    assert isinstance(mx, dict) and mx["code"] == "dns_nxdomain"
    zones.servfail("failing.test")
    zones.servfail("_imaps._tcp.failing.test")
    result = await discover(
        "a@failing.test", options=options(sources={"mx-provider", "srv"}, probe=False, timeout=3)
    )
    assert result.candidates == []
    assert report(result, "mx-provider")["error"]["code"] == "dns_servfail"  # type: ignore[index]
    assert report(result, "srv")["error"]["code"] == "dns_servfail"  # type: ignore[index]
    assert result.elapsed_s < 3


async def test_mx_at_microsoft_365_without_internet(zones: Zones, options: Options) -> None:
    zones.add("contoso-corp.test", "MX", "0 contoso-corp-test.mail.protection.outlook.com.")
    result = await discover("sam@contoso-corp.test", options=options(timeout=4))
    best = result.candidates[0]
    assert best.source == "mx-provider"
    assert best.provider == "Microsoft 365 (Exchange Online)"
    assert best.imap is not None and (best.imap.host, best.imap.port) == (
        "outlook.office365.com",
        993,
    )
    assert best.smtp is not None and (best.smtp.host, best.smtp.port) == ("smtp.office365.com", 587)
    assert best.auth == ["oauth2"]
    assert any("OAuth2" in note for note in best.notes)
    # No internet: the probe fails (our DNS server does not know Microsoft's hosts), honestly.
    assert best.probe_imap is not None and not best.probe_imap.ok
    assert result.elapsed_s < 4.5


async def test_mx_at_google_without_internet(zones: Zones, options: Options) -> None:
    zones.add("g-corp.test", "MX", "1 aspmx.l.google.com.", "5 alt1.aspmx.l.google.com.")
    result = await discover("sam@g-corp.test", options=options(probe=False, timeout=4))
    best = result.candidates[0]
    assert best.provider == "Google Workspace / Gmail"
    assert best.imap is not None and best.imap.host == "imap.gmail.com"
    assert "app-password" in best.auth and "oauth2" in best.auth
    zones.add("g-old.test", "MX", "10 aspmx2.googlemail.com.")
    result = await discover("sam@g-old.test", options=options(sources={"mx-provider"}, probe=False))
    assert result.candidates[0].provider == "Google Workspace / Gmail"


async def test_provider_table_by_domain(options: Options) -> None:
    result = await discover(
        "someone@icloud.com", options=options(sources={"provider"}, probe=False)
    )
    (candidate,) = result.candidates
    assert candidate.imap is not None and candidate.imap.host == "imap.mail.me.com"
    assert candidate.auth == ["app-password"]
    assert password_allowed(candidate, "imap.mail.me.com", "icloud.com")[0]
    assert not password_allowed(candidate, "imap.evil.test", "icloud.com")[0]


async def test_sources_are_concurrent_and_ranked(
    zones: Zones, https_server: HttpTestServer, options: Options
) -> None:
    """Several sources answer, each after 0.8 s: the total stays near 0.8 s, not the sum."""
    zones.local("autoconfig.multi.test", "multi.test", "autodiscover.multi.test")
    zones.add("_imaps._tcp.multi.test", "SRV", "0 1 993 imap.multi.test.")
    doc = client_config(
        domain="multi.test",
        imap=[("imap.multi.test", 993, "SSL")],
        smtp=[("smtp.multi.test", 465, "SSL")],
    )
    https_server.route("autoconfig.multi.test", AUTOCONFIG_PATH, Reply(body=doc, delay=0.8))
    https_server.route("multi.test", WELLKNOWN_PATH, Reply(body=doc, delay=0.8))
    https_server.route(
        "autodiscover.multi.test",
        AUTODISCOVER_PATH,
        Reply(body=autodiscover_settings(imap=("exch.multi.test", 993, "on")), delay=0.8),
    )
    started = time.monotonic()
    result = await discover("a@multi.test", options=options(probe=False))
    assert time.monotonic() - started < 2.0
    sources = [c.source for c in result.candidates]
    # Identical answers are merged; the more trusted source leads.
    assert sources[0] == "autoconfig"
    assert result.candidates[0].also_from == ["autoconfig-wellknown"]
    assert set(sources) == {"autoconfig", "autodiscover-subdomain", "srv"}


async def test_untrusted_certificate_and_downgrade_are_errors(
    zones: Zones, https_server: HttpTestServer, options: Options, tmp_path: Path
) -> None:
    zones.local("autoconfig.tlsbad.test", "tlsbad.test")
    doc = client_config(domain="tlsbad.test", imap=[("imap.tlsbad.test", 993, "SSL")])
    https_server.route("autoconfig.tlsbad.test", AUTOCONFIG_PATH, Reply(body=doc))
    # An https answer that redirects to plain http is refused, not silently downgraded.
    https_server.route(
        "tlsbad.test",
        WELLKNOWN_PATH,
        Reply.redirect("http://tlsbad.test/.well-known/autoconfig/mail/config-v1.1.xml"),
    )
    other_ca = tmp_path / "other.pem"
    other_ca.write_bytes(trustme.CA().cert_pem.bytes())
    result = await discover(
        "a@tlsbad.test",
        options=options(sources={"autoconfig"}, probe=False, ca_file=str(other_ca)),
    )
    assert report(result, "autoconfig")["error"]["code"] == "http_tls_failed"  # type: ignore[index]
    result = await discover(
        "a@tlsbad.test", options=options(sources={"autoconfig-wellknown"}, probe=False)
    )
    assert report(result, "autoconfig-wellknown")["error"]["code"] == "http_downgrade"  # type: ignore[index]


async def test_autodiscover_redirect_url_must_be_https(
    zones: Zones, https_server: HttpTestServer, options: Options
) -> None:
    zones.local("exch4.test")
    https_server.route(
        "exch4.test",
        AUTODISCOVER_PATH,
        Reply(body=autodiscover_redirect(url="http://evil.test/autodiscover/autodiscover.xml")),
    )
    result = await discover("a@exch4.test", options=options(sources={"autodiscover"}, probe=False))
    assert result.candidates == []
    assert report(result, "autodiscover")["error"]["code"] == "http_downgrade"  # type: ignore[index]


async def test_ispdb_cache_on_disk_survives_a_new_process(
    https_server: HttpTestServer, options: Options, tmp_path: Path
) -> None:
    https_server.route(
        ISPDB_HOST,
        "/v1.1/diskcache.test",
        Reply(body=client_config(domain="diskcache.test", imap=[("imap.dc.test", 993, "SSL")])),
    )
    for _ in range(2):  # a fresh IspdbCache each time, as in a new `cadence discover` run
        result = await discover(
            "a@diskcache.test",
            options=options(sources={"ispdb"}, probe=False, ispdb_cache=IspdbCache(tmp_path)),
        )
        assert result.candidates[0].imap is not None
    assert len(https_server.requests_for(ISPDB_HOST)) == 1
    # "Not in the database" is cached too.
    for _ in range(2):
        result = await discover(
            "a@unknown-isp.test",
            options=options(sources={"ispdb"}, probe=False, ispdb_cache=IspdbCache(tmp_path)),
        )
        assert result.candidates == []
    assert len(https_server.requests_for(ISPDB_HOST)) == 2


async def test_autodiscover_401_uses_the_password_only_on_the_own_domain(
    zones: Zones, https_server: HttpTestServer, options: Options
) -> None:
    """On-premises Exchange answers 401 to anonymous Autodiscover requests."""
    zones.local("onprem.test", "autodiscover.onprem.test", "ad.elsewhere.test")
    expected = "Basic " + base64.b64encode(b"jdoe@onprem.test:s3cret").decode()

    def needs_auth(req: Request) -> Reply:
        if req.headers.get("authorization") != expected:
            return Reply(status=401, headers={"WWW-Authenticate": 'Basic realm="x"'})
        return Reply(body=autodiscover_settings(imap=("mail.onprem.test", 993, "on")))

    https_server.route("onprem.test", AUTODISCOVER_PATH, needs_auth)
    # autodiscover.<domain> redirects (HTTP 302) to another domain that also wants auth.
    https_server.route(
        "autodiscover.onprem.test",
        AUTODISCOVER_PATH,
        Reply.redirect("https://ad.elsewhere.test/autodiscover/autodiscover.xml"),
    )
    https_server.route("ad.elsewhere.test", AUTODISCOVER_PATH, needs_auth)
    sources = {"autodiscover", "autodiscover-subdomain"}

    result = await discover("jdoe@onprem.test", options=options(sources=sources, probe=False))
    assert result.candidates == []
    error = report(result, "autodiscover")["error"]
    assert isinstance(error, dict) and error["code"] == "autodiscover_auth_required"
    assert "--password-env" in error["hint"]

    https_server.requests.clear()
    result = await discover(
        "jdoe@onprem.test", options=options(sources=sources, probe=False, password="s3cret")
    )
    (candidate,) = result.candidates
    assert candidate.source == "autodiscover"
    assert candidate.imap is not None and candidate.imap.host == "mail.onprem.test"
    error = report(result, "autodiscover-subdomain")["error"]
    assert isinstance(error, dict) and error["code"] == "autodiscover_auth_required"
    # The password never went to the other domain, not even through the redirect.
    assert https_server.requests_for("ad.elsewhere.test")
    assert all(
        "authorization" not in r.headers for r in https_server.requests_for("ad.elsewhere.test")
    )
    assert any(
        r.headers.get("authorization") == expected for r in https_server.requests_for("onprem.test")
    )
