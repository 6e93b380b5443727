"""The ``cadence`` command line.

Each sub-command lives in its own module under ``cadence.commands`` and is imported only when
it is run, so ``cadence --help`` stays fast and one command's heavy imports never slow another.
Exit status: 0 success, 1 a requirement or operation failed, 2 a usage error.
"""

from __future__ import annotations

import importlib
import logging
import os

import click

# name -> "module:attribute" of a click.Command.  Add a line here to add a command.
COMMANDS: dict[str, str] = {
    "check": "cadence.commands.check:check",
    "classify": "cadence.commands.classify:classify",
    "discover": "cadence.commands.discover:discover",
    "mailbox": "cadence.commands.mailbox:mailbox",
    "cadence": "cadence.commands.cadence_apply:cadence_group",
    "prospects": "cadence.commands.prospects:prospects",
    "enroll": "cadence.commands.enroll:enroll",
    "enrollments": "cadence.commands.enrollments:enrollments",
    "preview": "cadence.commands.preview:preview",
    "run": "cadence.commands.run:run",
    "serve": "cadence.commands.serve:serve",
    "quarantine": "cadence.commands.quarantine:quarantine",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup)
@click.version_option(package_name="cadence")
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Cadence: email cadences from your own mailbox, with reply tracking."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(
        level=int(os.environ.get("CADENCE_LOG_LEVEL", level)),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
