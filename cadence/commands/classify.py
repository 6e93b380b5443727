"""``cadence classify FILE...``: what is each inbound message (reply, auto-reply, bounce ...)?

One JSON object per file with ``--json`` (one per line, a stable shape scripts rely on):
``{"file", "kind", "bounces": [...], "auto_reply": {...}|null, "reply_text", "in_reply_to"}``;
a short readable summary otherwise.  A file that cannot be read or is not a message gets an
error line (``{"file", "error": {"code", "message", "hint"}}`` with ``--json``) and the others
are still classified.  Exit status: 0 all classified, 1 any file failed, 2 usage error.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from cadence.mail.classify import Classification, MalformedMessageError, classify_message

# A message larger than this is read only up to the limit (RFC 5321 §4.5.3.1.7 leaves the size
# to the server; 50 MB is above what the common providers accept).
MAX_FILE_BYTES = 50 * 1024 * 1024


def _summary(path: str, result: Classification) -> str:
    lines = [f"{path}: {result.kind}"]
    for bounce in result.bounces:
        hard = "hard" if bounce.hard else "soft"
        lines.append(
            f"  {bounce.action} {bounce.recipient or '(recipient unknown)'}: {bounce.reason} "
            f"({hard}; status {bounce.status or '-'}, reply {bounce.reply_code or '-'})"
        )
    if result.auto_reply is not None:
        back = result.auto_reply.return_date
        lines.append(f"  back on: {back.isoformat() if back else 'not stated'}")
    if result.reply_text:
        text = result.reply_text.strip().replace("\n", " ")
        lines.append(f"  reply: {text[:200]}{'…' if len(text) > 200 else ''}")
    if result.in_reply_to:
        lines.append(f"  in reply to: {' '.join(result.in_reply_to[:5])}")
    return "\n".join(lines)


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def classify(files: tuple[Path, ...], as_json: bool) -> None:
    """Classify raw RFC 5322 message files (.eml): reply, auto_reply, bounce, feedback,
    delivery_report or other."""
    failed = False
    for path in files:
        name = str(path)
        try:
            with path.open("rb") as handle:
                raw = handle.read(MAX_FILE_BYTES)
            result = classify_message(raw)
        except OSError as exc:
            failed = True
            _error(name, "unreadable_file", f"cannot read the file: {exc.strerror or exc}",
                   "Check the path and its permissions.", as_json)
            continue
        except MalformedMessageError as exc:
            failed = True
            _error(name, exc.code, exc.message, exc.hint, as_json)
            continue
        if as_json:
            click.echo(result.to_json(name))
        else:
            click.echo(_summary(name, result))
    if failed:
        raise SystemExit(1)


def _error(name: str, code: str, message: str, hint: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"file": name, "error": {"code": code, "message": message,
                                                       "hint": hint}}))
    else:
        click.echo(f"{name}: error [{code}] {message}" + (f" ({hint})" if hint else ""),
                   err=True)
