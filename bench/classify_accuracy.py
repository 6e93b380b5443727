"""Accuracy of the inbound-mail classifier on the shared real-world corpus.

    python bench/classify_accuracy.py --corpus ../shared/corpus [--failures AREA]

Reads the corpus in place (never copies it) and prints, per source and overall: bounce
detection rate, recipient accuracy, hard/soft and reason agreement, false positives on
non-bounces and on human replies, auto-reply detection, reply-text exact match
(whitespace-insensitive), and the time per message.  ``--failures`` lists the misses of one
area (bounce, recipient, hard, reason, fp, autoreply, reply) to guide rule work.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import re
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from cadence.mail.classify import Classification, MalformedMessageError, classify_message
from cadence.mail.reply_text import extract_reply_from_html, extract_reply_text

TARGETS = {
    "bounce detected": 0.98,
    "recipient": 0.98,
    "hard/soft": 0.95,
    "reason": 0.85,
    "reply text exact": 0.75,
}

# Mail::DeliveryStatus::BounceParser's std_reason -> sisimai vocabulary (for agreement).
STD_REASON = {
    "user_unknown": {"userunknown", "hasmoved"},
    "over_quota": {"mailboxfull"},
    "domain_error": {"hostunknown", "notaccept"},
    "spam": {"spamdetected", "blocked", "filtered", "rejected", "policyviolation"},
    "user_disabled": {"suspend"},
    "message_too_large": {"mesgtoobig", "exceedlimit"},
    "no_problemo": {"delivered"},
    "unknown": None,
}


class Counter:
    def __init__(self) -> None:
        self.hit: dict[str, int] = defaultdict(int)
        self.total: dict[str, int] = defaultdict(int)

    def add(self, metric: str, ok: bool) -> None:
        self.total[metric] += 1
        self.hit[metric] += int(ok)


class Bench:
    def __init__(self, corpus: Path, failures: str | None) -> None:
        self.corpus = corpus
        self.failures = failures
        self.by_source: dict[str, Counter] = defaultdict(Counter)
        self.overall = Counter()
        self.elapsed = 0.0
        self.messages = 0
        self.errors: list[str] = []
        self.current = ""
        self.counted: set[tuple[str, str, int]] = set()
        self.baseline = Counter()
        self.baseline_bounce = False

    def add(self, source: str, metric: str, ok: bool, detail: str = "", row: int = 0) -> None:
        self.by_source[source].add(metric, ok)
        # a file listed by two label sets (autoreply/ re-labels sisimai and bounceparser files)
        # counts once overall
        key = (metric, self.current, row)
        if key not in self.counted:
            self.counted.add(key)
            self.overall.add(metric, ok)
            if metric == "bounce detected":
                self.baseline.add(metric, self.baseline_bounce)
        if not ok and self.failures and metric.startswith(self.failures):
            print(f"  MISS [{source}] {metric}: {detail}", file=sys.stderr)

    def classify(self, path: Path) -> Classification | None:
        self.current = str(path.resolve())
        raw = path.read_bytes()
        self.baseline_bounce = _naive_rfc3464_failure(raw)
        start = time.perf_counter()
        try:
            result = classify_message(raw)
        except MalformedMessageError as exc:
            self.errors.append(f"{path}: {exc}")
            result = None
        self.elapsed += time.perf_counter() - start
        self.messages += 1
        return result

    # --- sisimai -------------------------------------------------------------------------
    def sisimai(self) -> None:
        base = self.corpus / "sisimai"
        samples = json.loads((base / "labels.json").read_text())["samples"]
        for name, rec in sorted(samples.items()):
            kind = rec["kind"]
            if kind == "unlabeled":
                continue
            result = self.classify(base / "eml" / name)
            got = result.kind if result else "error"
            src = "sisimai"
            if kind == "bounce":
                self._bounce_rows(src, name, rec, result)
            elif kind == "feedback-report":
                self.add(src, "feedback detected", got == "feedback", f"{name} -> {got}")
            elif kind == "auto-reply":
                self.add(src, "autoreply detected", got == "auto_reply", f"{name} -> {got}")
                self.add(src, "fp bounce on non-bounce", got != "bounce", f"{name} -> {got}")
            elif kind == "delivery-success" or kind == "not-bounce":
                self.add(src, "fp bounce on non-bounce", got != "bounce", f"{name} -> {got}")

    def _bounce_rows(self, src: str, name: str, rec: dict[str, Any],
                     result: Classification | None) -> None:
        got = result.kind if result else "error"
        # A delay report is a delivery_report by design (not a failure); the corpus labels it a
        # bounce, so it counts as detected when we read it as a delay of the same recipients.
        delayed = got == "delivery_report" and result is not None and bool(result.bounces) and all(
            b.action == "delayed" for b in result.bounces)
        if delayed:
            self.add(src, "delay reports (as delivery_report)", True, name)
        self.add(src, "bounce detected", got == "bounce" or delayed, f"{name} -> {got}")
        if not (got == "bounce" or delayed) or result is None:
            return
        expected = rec["expected"] or []
        truth: list[str] = []
        derived = rec.get("dsn_fields_derived") or []
        if derived and len(derived) == len(expected):
            truth = [d.get("final_recipient", "").lower() for d in derived]
        elif rec.get("x_failed_recipients_header"):
            truth = [a.lower() for a in rec["x_failed_recipients_header"]]
        ours = [b.recipient.lower() for b in result.bounces]
        if truth and all(truth):
            self.add(src, "recipient", sorted(set(ours)) == sorted(set(truth)),
                     f"{name}: {ours} vs {truth}")
        for i, row in enumerate(expected):
            mine = result.bounces[i] if i < len(result.bounces) else None
            self.add(src, "hard/soft", mine is not None and mine.hard == row["hardbounce"],
                     f"{name}: {mine.hard if mine else None} vs {row['hardbounce']} "
                     f"({row['reason']}, {row['status']})", row=i)
            if row["reason"] in ("undefined", "onhold"):
                continue
            self.add(src, "reason", mine is not None and mine.reason == row["reason"],
                     f"{name}: {mine.reason if mine else None} vs {row['reason']} "
                     f"(status {row['status']}, ours {mine.status if mine else None})", row=i)

    # --- bounceparser ----------------------------------------------------------------------
    def bounceparser(self) -> None:
        base = self.corpus / "bounceparser"
        samples = json.loads((base / "labels.json").read_text())["samples"]
        src = "bounceparser"
        for name, rec in sorted(samples.items()):
            exp = rec.get("expect") or {}
            if "is_bounce" not in exp:
                continue
            result = self.classify(base / "msg" / name)
            got = result.kind if result else "error"
            if not exp["is_bounce"]:
                self.add(src, "fp bounce on non-bounce", got != "bounce", f"{name} -> {got}")
                continue
            self.add(src, "bounce detected", got == "bounce", f"{name} -> {got}")
            if got != "bounce" or result is None:
                continue
            ours = sorted({b.recipient.lower() for b in result.bounces})
            if exp.get("addresses"):
                self.add(src, "recipient", ours == sorted(set(exp["addresses"])),
                         f"{name}: {ours} vs {exp['addresses']}")
            std = STD_REASON.get(exp.get("std_reason", "unknown"))
            if std and result.bounces:
                self.add(src, "reason", result.bounces[0].reason in std,
                         f"{name}: {result.bounces[0].reason} vs {exp['std_reason']}")
                hard_expected = exp["std_reason"] in ("user_unknown", "domain_error")
                self.add(src, "hard/soft", result.bounces[0].hard == hard_expected,
                         f"{name}: {result.bounces[0].hard} vs {exp['std_reason']}")
            if exp.get("orig_message_id"):
                self.add(src, "original message-id", exp["orig_message_id"] in result.in_reply_to,
                         f"{name}: {result.in_reply_to}")

    # --- autoreply labels ----------------------------------------------------------------
    def autoreply(self) -> None:
        base = self.corpus / "autoreply"
        samples = json.loads((base / "labels.json").read_text())["samples"]
        src = "autoreply"
        for rel, rec in sorted(samples.items()):
            label = rec["label"]
            result = self.classify(self.corpus / rel)
            got = result.kind if result else "error"
            if label == "auto-reply":
                self.add(src, "autoreply detected", got == "auto_reply", f"{rel} -> {got}")
            elif label == "human":
                self.add(src, "fp on human replies", got not in ("auto_reply", "bounce"),
                         f"{rel} -> {got}")
            elif label in ("bounce", "bounce-via-auto-reply"):
                self.add(src, "bounce detected", got == "bounce", f"{rel} -> {got}")
            elif label == "delay-notice":
                self.add(src, "fp bounce on non-bounce", got != "bounce", f"{rel} -> {got}")
            else:
                self.add(src, "fp bounce on non-bounce", got != "bounce", f"{rel} -> {got}")

    # --- replies -------------------------------------------------------------------------
    def replies(self) -> None:
        for labels in sorted((self.corpus / "replies").glob("*/labels.json")):
            src = "replies/" + labels.parent.name
            samples = json.loads(labels.read_text())["samples"]
            for rel, rec in sorted(samples.items()):
                expected = rec.get("expected_reply")
                path = labels.parent / rel
                if expected is None or not path.exists():
                    continue
                text = self._reply_of(path, src)
                ok = _squash(text) == _squash(expected)
                self.baseline.add("reply text exact",
                                  _squash(_naive_reply(path)) == _squash(expected))
                self.add(src, "reply text exact", ok,
                         f"{rel}\n---- got:\n{text}\n---- expected:\n{expected}\n")

    def _reply_of(self, path: Path, src: str) -> str:
        self.current = str(path.resolve())
        suffix = path.suffix.lower()
        if suffix in (".eml", ".msg"):
            result = self.classify(path)
            got = result.kind if result else "error"
            self.add(src, "fp on human replies", got not in ("auto_reply", "bounce"),
                     f"{path.name} -> {got}")
            return (result.reply_text or "") if result else ""
        data = path.read_bytes().decode("utf-8", errors="replace")
        start = time.perf_counter()
        out = extract_reply_from_html(data) if suffix in (".html", ".htm") else (
            extract_reply_text(data))
        self.elapsed += time.perf_counter() - start
        self.messages += 1
        return out

    # --- report --------------------------------------------------------------------------
    def report(self) -> None:
        metrics = ["bounce detected", "delay reports (as delivery_report)", "recipient",
                   "hard/soft", "reason", "original message-id",
                   "feedback detected", "fp bounce on non-bounce", "fp on human replies",
                   "autoreply detected", "reply text exact"]
        print(f"corpus: {self.corpus}")
        for source in sorted(self.by_source):
            counter = self.by_source[source]
            print(f"\n[{source}]")
            for metric in metrics:
                if counter.total.get(metric):
                    self._line(metric, counter)
        print("\n[overall]")
        for metric in metrics:
            if self.overall.total.get(metric):
                self._line(metric, self.overall, target=True)
        print("\n[baseline measured in this run: RFC 3464 parts only / cut at the first '>' or "
              "'On ... wrote:' line]")
        for metric in ("bounce detected", "reply text exact"):
            base_hit, base_total = self.baseline.hit[metric], self.baseline.total[metric]
            ours = self.overall.hit[metric] / max(1, self.overall.total[metric])
            base = base_hit / max(1, base_total)
            ratio = f"{ours / base:.2f}x" if base else "n/a"
            print(f"{metric:28s} baseline {base_hit:4d} / {base_total:<4d} {100 * base:6.1f}%   "
                  f"ours/baseline {ratio}")
        if self.messages:
            print(f"\nmessages classified: {self.messages}, "
                  f"time per message: {1000 * self.elapsed / self.messages:.2f} ms")
        if self.errors:
            print(f"typed errors (malformed input): {len(self.errors)}")
            for line in self.errors[:10]:
                print("  " + line)

    def _line(self, metric: str, counter: Counter, target: bool = False) -> None:
        hit, total = counter.hit[metric], counter.total[metric]
        rate = hit / total
        label = metric
        if metric.startswith("fp"):
            miss = total - hit
            text = f"{label:28s} {miss:4d} / {total:<4d} false positives"
            if target and metric == "fp on human replies":
                text += "   (target 0)" + (" OK" if miss == 0 else " MISSED")
            print(text)
            return
        text = f"{label:28s} {hit:4d} / {total:<4d} {100 * rate:6.1f}%"
        if target and metric in TARGETS:
            goal = TARGETS[metric]
            text += f"   (target >= {100 * goal:.0f}%)" + (" OK" if rate >= goal else " MISSED")
        print(text)


def _naive_rfc3464_failure(raw: bytes) -> bool:
    """Baseline: a bounce is a multipart/report delivery-status part saying Action: failed."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
        for part in message.walk():
            if part.get_content_type() == "message/delivery-status":
                return b"action: failed" in part.as_bytes().lower()
    except Exception:
        return False
    return False


def _naive_reply(path: Path) -> str:
    """Baseline: the text above the first '>' line or one-line 'On ... wrote:' attribution."""
    data = path.read_bytes()
    if path.suffix.lower() in (".eml", ".msg"):
        try:
            message = email.message_from_bytes(data, policy=email.policy.default)
            part = message.get_body(preferencelist=("plain",))
            text = part.get_content() if part is not None else ""
        except Exception:
            text = ""
    else:
        text = data.decode("utf-8", errors="replace")
    out: list[str] = []
    for line in text.splitlines():
        if line.lstrip().startswith(">") or re.match(r"^On .{0,200} wrote:\s*$", line):
            break
        out.append(line)
    return "\n".join(out)


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text or "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", required=True, type=Path, help="path to the shared corpus")
    parser.add_argument("--failures", default=None, help="list misses of one metric area")
    args = parser.parse_args()
    corpus: Path = args.corpus
    if not (corpus / "README.md").exists():
        parser.error(f"{corpus} does not look like the corpus (no README.md)")
    bench = Bench(corpus, args.failures)
    bench.sisimai()
    bench.bounceparser()
    bench.autoreply()
    bench.replies()
    bench.report()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
