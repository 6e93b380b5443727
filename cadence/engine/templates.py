"""Personalised subjects and bodies, rendered in Jinja2's sandbox.

Templates see the prospect's fields (``first_name``, ``last_name``, ``company``, ``title``,
``email``, ``timezone``), its custom fields, and ``sender`` (the mailbox's name and address).
An empty field counts as missing, so ``{{ first_name }}`` with no first name does not render
"Hi ," but raises ``MissingVariable``: the engine holds the enrollment with that reason.
``{{ first_name | default("there") }}`` supplies a fallback.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from cadence.errors import CadenceError

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MISSING = re.compile(r"'([^']+)' is undefined")


class TemplateError(CadenceError):
    code = "template_error"
    hint = "fix the cadence file and run `cadence cadence apply` again"


class MissingVariable(TemplateError):
    code = "template_missing_variable"

    def __init__(self, variable: str, where: str) -> None:
        super().__init__(
            f"the {where} uses {{{{ {variable} }}}} but this prospect has no {variable}",
            hint=(
                f"fill in {variable} for this prospect, or give a fallback: "
                f'{{{{ {variable} | default("...") }}}}'
            ),
            detail={"variable": variable, "where": where},
        )
        self.variable = variable


_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
_html_env = SandboxedEnvironment(
    undefined=StrictUndefined, autoescape=True, keep_trailing_newline=True
)


def check_syntax(source: str, where: str) -> None:
    """Raise ``TemplateError`` for a template that does not parse (at ``cadence apply``)."""
    try:
        _env.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(
            f"the {where} has a template error on line {exc.lineno}: {exc.message}"
        ) from None


@lru_cache(maxsize=512)
def _compiled(source: str, html: bool) -> Template:
    """Compiling is most of the cost of rendering; a cadence's few templates are reused."""
    return (_html_env if html else _env).from_string(source)


def render(source: str, context: Mapping[str, Any], where: str, *, html: bool = False) -> str:
    try:
        return _compiled(source, html).render(dict(context))
    except UndefinedError as exc:
        match = _MISSING.search(str(exc))
        raise MissingVariable(match.group(1) if match else str(exc), where) from None
    except SecurityError as exc:
        raise TemplateError(f"the {where} tried something the sandbox forbids: {exc}") from None
    except TemplateSyntaxError as exc:
        raise TemplateError(
            f"the {where} has a template error on line {exc.lineno}: {exc.message}"
        ) from None


@dataclass(frozen=True)
class ProspectFields:
    email: str
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    title: str | None = None
    timezone: str | None = None
    custom: Mapping[str, Any] | None = None


def template_context(
    prospect: ProspectFields, sender_name: str | None, sender_address: str
) -> dict[str, Any]:
    """Only fields with a value: an empty string is a missing variable, not "Hi ,"."""
    context: dict[str, Any] = {}
    for key, value in (prospect.custom or {}).items():
        if _IDENTIFIER.match(key) and value not in (None, ""):
            context[key] = value
    for key in ("email", "first_name", "last_name", "company", "title", "timezone"):
        value = getattr(prospect, key)
        if value not in (None, ""):
            context[key] = value
    sender: dict[str, str] = {"email": sender_address}
    if sender_name:
        sender["name"] = sender_name
    context["sender"] = sender
    return context
