"""``cadence prospects import FILE.csv``: validate every row, then store all or nothing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from cadence.engine.prospects import (
    ImportRejected,
    ImportReport,
    ProspectRow,
    import_prospects,
    parse_csv,
)
from cadence.engine.runtime import open_runtime

# Files with more rows than this get a progress bar.
_PROGRESS_FROM = 1000


@click.group()
def prospects() -> None:
    """The people cadences write to."""


@prospects.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--map",
    "mappings",
    multiple=True,
    metavar="COLUMN=FIELD",
    help="Use the file's COLUMN as FIELD (email, first_name, last_name, company, "
    "title, timezone). Repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")
def import_(file: Path, mappings: tuple[str, ...], as_json: bool) -> None:
    """Import prospects from a CSV file with a header row."""
    mapping: dict[str, str] = {}
    for item in mappings:
        column, sep, target = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r}: use COLUMN=FIELD", param_hint="--map")
        mapping[column.strip()] = target.strip()
    text = file.read_text(encoding="utf-8-sig")
    total = max(text.count("\n") - 1, 0)
    if total >= _PROGRESS_FROM and not as_json:
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task(f"Checking {file.name}", total=total)
            rows, report = parse_csv(text, mapping, lambda n: bar.advance(task, n))
    else:
        rows, report = parse_csv(text, mapping)
    try:
        report = asyncio.run(_store(rows, report))
    except ImportRejected as exc:
        _print(exc.report, as_json)
        raise SystemExit(1) from None
    _print(report, as_json)


async def _store(rows: list[ProspectRow], report: ImportReport) -> ImportReport:
    if not report.ok:
        raise ImportRejected(report)
    async with open_runtime() as rt, rt.db.transaction() as s:
        return await import_prospects(s, rows, report)


def _print(report: ImportReport, as_json: bool) -> None:
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": report.ok,
                    "rows": report.rows,
                    "created": report.created,
                    "updated": report.updated,
                    "errors": [e.__dict__ for e in report.errors],
                },
                indent=2,
            )
        )
        return
    if report.ok:
        click.echo(
            f"Imported {report.rows} prospect(s): {report.created} new, {report.updated} updated."
        )
        return
    click.echo(f"Nothing imported: {len(report.errors)} problem(s).", err=True)
    for e in report.errors[:200]:
        click.echo(f"  line {e.line}, {e.column or 'row'}: {e.message}", err=True)
    if len(report.errors) > 200:
        click.echo(f"  ... and {len(report.errors) - 200} more", err=True)
