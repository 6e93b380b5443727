"""How long does ``cadence discover`` take?  Everything on loopback, real servers.

    python bench/discovery_timing.py [--runs 5] [--corpus ../shared/corpus]

Scenarios (one domain each, every source configured to answer, probes against the Dovecot
test bed and the SMTP test server):

* ``all answering``: all 13 sources answer at once (default: stop at the first verified
  answer no pending source can outrank; ``--all``: wait for every source);
* ``3 low-trust sources hang``: the ISP database, ``autodiscover.<domain>`` and one SRV
  look-up never answer; discovery need not wait for them once a more trusted source is
  verified (with ``--all`` it waits for the 10 s budget);
* ``autoconfig + 3 others hang``: the most trusted configured source hangs too, so discovery
  waits for the budget (default 10 s, and 3 s);
* baseline, measured in the same run: every source run *alone*, one after the other
  (what a sequential implementation would cost); the ratio shows what concurrency buys.

With ``--corpus``, also parses every clientConfig file of the ISP database in
``<corpus>/ispdb/xml`` (read in place, never copied) and reports how many give usable IMAP and
SMTP settings, and the parse time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trustme

from cadence.mail.autoconfig import IspdbCache, parse_client_config
from cadence.mail.discovery import ALL_SOURCES, DiscoveryOptions, discover
from cadence.mail.endpoints import Security
from cadence.testing.certs import make_certificates
from cadence.testing.dns_server import DnsTestServer
from cadence.testing.dovecot import DovecotConfig, DovecotServer
from cadence.testing.http_server import HttpTestServer, Reply, sni_context
from cadence.testing.smtp_server import SMTPTestServer

HOST = "mail.cadence.test"  # the test bed's certificate name


def client_config(domain: str, imaps: int, smtps: int) -> bytes:
    return (
        f'<?xml version="1.0"?><clientConfig version="1.1"><emailProvider id="{domain}">'
        f"<domain>{domain}</domain><displayName>Bench</displayName>"
        f'<incomingServer type="imap"><hostname>{HOST}</hostname><port>{imaps}</port>'
        "<socketType>SSL</socketType><authentication>password-cleartext</authentication>"
        "<username>%EMAILADDRESS%</username></incomingServer>"
        f'<outgoingServer type="smtp"><hostname>{HOST}</hostname><port>{smtps}</port>'
        "<socketType>SSL</socketType><authentication>password-cleartext</authentication>"
        "<username>%EMAILADDRESS%</username></outgoingServer>"
        "</emailProvider></clientConfig>"
    ).encode()


def autodiscover_doc(imaps: int, smtps: int) -> bytes:
    return (
        '<?xml version="1.0"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/'
        'autodiscover/responseschema/2006"><Response xmlns="http://schemas.microsoft.com/'
        'exchange/autodiscover/outlook/responseschema/2006a"><Account><Action>settings</Action>'
        f"<Protocol><Type>IMAP</Type><Server>{HOST}</Server><Port>{imaps}</Port><SSL>on</SSL>"
        f"</Protocol><Protocol><Type>SMTP</Type><Server>{HOST}</Server><Port>{smtps}</Port>"
        "<SSL>on</SSL></Protocol></Account></Response></Autodiscover>"
    ).encode()


def configure(
    domain: str,
    dns: DnsTestServer,
    https: HttpTestServer,
    http: HttpTestServer,
    dovecot: DovecotServer,
    smtp: SMTPTestServer,
    slow: frozenset[str] = frozenset(),
) -> None:
    """Every source answers for ``domain``; those named in ``slow`` take a minute."""
    imaps, smtps = dovecot.imaps_port, smtp.tls_port
    for name in (HOST, domain, f"autoconfig.{domain}", f"autodiscover.{domain}", f"mail.{domain}"):
        dns.add(name, "A", "127.0.0.1")
    dns.add(domain, "MX", f"10 mail.{domain}.")
    dns.add(f"_imaps._tcp.{domain}", "SRV", f"0 1 {imaps} {HOST}.")
    dns.add(f"_submissions._tcp.{domain}", "SRV", f"0 1 {smtps} {HOST}.")
    dns.add(f"_autodiscover._tcp.{domain}", "SRV", f"0 1 {https.port} {domain}.")

    def delay(name: str) -> float:
        return 60.0 if name in slow else 0.0

    cfg = client_config(domain, imaps, smtps)
    https.route(
        f"autoconfig.{domain}", "/mail/config-v1.1.xml", Reply(body=cfg, delay=delay("autoconfig"))
    )
    http.route(f"autoconfig.{domain}", "/mail/config-v1.1.xml", Reply(body=cfg))
    https.route(domain, "/.well-known/autoconfig/mail/config-v1.1.xml", Reply(body=cfg))
    https.route("ispdb.test", f"/v1.1/{domain}", Reply(body=cfg, delay=delay("ispdb")))
    https.route("ispdb.test", f"/v1.1/{domain}.mx", Reply(status=404))
    ad = autodiscover_doc(imaps, smtps)
    https.route(domain, "/autodiscover/autodiscover.xml", Reply(body=ad))
    https.route(
        f"autodiscover.{domain}",
        "/autodiscover/autodiscover.xml",
        Reply(body=ad, delay=delay("autodiscover-subdomain")),
    )
    http.route(
        f"autodiscover.{domain}",
        "/autodiscover/autodiscover.xml",
        Reply.redirect(f"https://{domain}/autodiscover/autodiscover.xml"),
    )
    if "srv" in slow:
        dns.delay(f"_submissions._tcp.{domain}", 60.0)


async def timed(address: str, options: DiscoveryOptions) -> tuple[float, int, int]:
    started = time.perf_counter()
    result = await discover(address, options=options)
    elapsed = time.perf_counter() - started
    verified = sum(1 for c in result.candidates if c.verified)
    timeouts = sum(1 for s in result.sources if s.status == "timeout")
    return elapsed, verified, timeouts


def summary(values: list[float]) -> str:
    values = sorted(values)
    return f"median {statistics.median(values):6.3f} s  min {values[0]:6.3f}  max {values[-1]:6.3f}"


async def scenarios(
    args: argparse.Namespace,
    base: dict[str, object],
    servers: tuple[DnsTestServer, HttpTestServer, HttpTestServer, DovecotServer, SMTPTestServer],
) -> dict[str, object]:
    dns, https, http, dovecot, smtp = servers
    out: dict[str, object] = {}
    low_trust = frozenset({"ispdb", "autodiscover-subdomain", "srv"})
    configure("fast.bench.test", dns, https, http, dovecot, smtp)
    configure("low.bench.test", dns, https, http, dovecot, smtp, low_trust)
    configure("top.bench.test", dns, https, http, dovecot, smtp, low_trust | {"autoconfig"})

    def opts(**kw: object) -> DiscoveryOptions:
        merged = {**base, "ispdb_cache": IspdbCache(), **kw}
        return DiscoveryOptions(**merged)  # type: ignore[arg-type]

    plans: list[tuple[str, str, dict[str, object]]] = [
        ("all answering", "rep@fast.bench.test", {}),
        ("all answering, --all", "rep@fast.bench.test", {"complete": True}),
        ("3 low-trust sources hang", "rep@low.bench.test", {}),
        ("3 low-trust hang, --all", "rep@low.bench.test", {"complete": True}),
        ("autoconfig + 3 others hang", "rep@top.bench.test", {}),
        ("autoconfig + 3 hang, 3 s budget", "rep@top.bench.test", {"timeout": 3.0}),
    ]
    for label, address, kw in plans:
        runs = [await timed(address, opts(**kw)) for _ in range(args.runs)]
        times = [r[0] for r in runs]
        print(
            f"{label:<34} {summary(times)}  verified {runs[0][1]}, sources timed out {runs[0][2]}"
        )
        out[label] = {"times_s": times, "verified": runs[0][1], "timeouts": runs[0][2]}
    # Baseline: each source alone, one after the other (what sequential discovery would cost).
    seq: list[float] = []
    per_source: dict[str, list[float]] = {name: [] for name in ALL_SOURCES}
    for _ in range(max(1, args.runs // 2)):
        total = 0.0
        for name in ALL_SOURCES:
            elapsed, _, _ = await timed("rep@fast.bench.test", opts(sources=frozenset({name})))
            per_source[name].append(elapsed)
            total += elapsed
        seq.append(total)
    print(
        "  each source alone (median s): "
        + ", ".join(f"{n} {statistics.median(v):.3f}" for n, v in per_source.items())
    )
    out["per_source_s"] = per_source
    print(f"{'baseline: 13 sources one by one':<34} {summary(seq)}")
    for label in ("all answering", "all answering, --all"):
        conc = statistics.median(out[label]["times_s"])  # type: ignore[index]
        print(f"ratio {label!r} / sequential baseline: {conc / statistics.median(seq):.2f}")
    out["sequential_baseline_s"] = seq
    return out


def corpus_eval(corpus: Path) -> dict[str, object]:
    files = sorted((corpus / "ispdb" / "xml").glob("*.xml"))
    ok = imap = smtp = both = 0
    failures: list[str] = []
    started = time.perf_counter()
    for path in files:
        domain = path.name.removesuffix(".xml")
        if "." not in domain:
            domain = f"{domain}.example"
        try:
            config = parse_client_config(path.read_bytes(), f"user@{domain}", what=path.name)
        except Exception as exc:
            failures.append(f"{path.name}: {exc}")
            continue
        ok += 1
        has_imap, has_smtp = config.best_imap() is not None, config.best_smtp() is not None
        imap += has_imap
        smtp += has_smtp
        both += has_imap and has_smtp
    elapsed = time.perf_counter() - started
    print(
        f"ISPDB corpus: {len(files)} files, {ok} parsed, {imap} with secure IMAP, "
        f"{smtp} with secure SMTP, {both} with both; "
        f"{elapsed / max(1, len(files)) * 1e6:.0f} µs per file"
    )
    for failure in failures[:10]:
        print(f"  not parsed: {failure}")
    return {"files": len(files), "parsed": ok, "imap": imap, "smtp": smtp, "both": both}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--corpus", type=Path, help="path to the shared corpus directory")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    results: dict[str, object] = {}
    if args.corpus:
        results["corpus"] = corpus_eval(args.corpus)
    workdir = Path(tempfile.mkdtemp(prefix="cadence-bench-discovery-"))
    certs = make_certificates(workdir / "certs")
    ca = trustme.CA()
    bundle = workdir / "bundle.pem"
    bundle.write_bytes(ca.cert_pem.bytes() + b"\n" + certs.ca_file.read_bytes())
    dns = DnsTestServer().start()
    dns.add("ispdb.test", "A", "127.0.0.1")
    https = HttpTestServer(tls=sni_context(ca)).start()
    http = HttpTestServer().start()
    dovecot = DovecotServer(DovecotConfig("bench", cert=certs.good)).start()
    smtp = SMTPTestServer(dovecot, certs.good, str(certs.ca_file)).start()
    try:
        base = {
            "dns": dns.address,
            "ca_file": str(bundle),
            "https_port": https.port,
            "http_port": http.port,
            "ispdb_url": "https://ispdb.test/v1.1/",
            "guess_imap": ((dovecot.imaps_port, Security.TLS),),
            "guess_smtp": ((smtp.tls_port, Security.TLS),),
        }
        results["timing"] = asyncio.run(scenarios(args, base, (dns, https, http, dovecot, smtp)))
    finally:
        smtp.stop()
        dovecot.stop()
        https.stop()
        http.stop()
        dns.stop()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
