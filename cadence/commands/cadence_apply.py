"""``cadence cadence apply FILE.yaml``: create or update a cadence from a file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from cadence.engine.cadences import CadenceSpec, apply_cadence, parse_cadence
from cadence.engine.runtime import open_runtime
from cadence.errors import CadenceError


@click.group("cadence")
def cadence_group() -> None:
    """Cadences: sequences of steps."""


@cadence_group.command("apply")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def apply(file: Path) -> None:
    """Create the cadence FILE describes, or update it (re-applying is safe)."""
    try:
        spec = parse_cadence(file.read_text(encoding="utf-8"), str(file))
        created, steps = asyncio.run(_apply(spec))
    except CadenceError as exc:
        click.echo(f"Error: {exc.message}", err=True)
        if exc.hint:
            click.echo(f"Hint: {exc.hint}", err=True)
        raise SystemExit(
            2 if exc.code.startswith("bad_") or "template" in exc.code else 1
        ) from None
    click.echo(f"Cadence {spec.name!r} {'created' if created else 'updated'}: {steps} step(s).")


async def _apply(spec: CadenceSpec) -> tuple[bool, int]:
    async with open_runtime() as rt, rt.db.transaction() as s:
        result = await apply_cadence(s, spec)
        return result.created, result.steps
