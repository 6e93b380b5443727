"""Importing prospects from CSV: every row validated first, then all stored or none.

The header names the columns; ``mapping`` renames file columns to Cadence fields (``email``,
``first_name``, ``last_name``, ``company``, ``title``, ``timezone``); any other column becomes
a custom field usable in templates.  A prospect already stored is updated.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cadence.engine.scheduling import zone
from cadence.errors import CadenceError
from cadence.store.models import Prospect
from cadence.store.repositories import ProspectRepository

FIELDS = ("email", "first_name", "last_name", "company", "title", "timezone")
# A practical address check (RFC 5321 section 4.1.2 in spirit): one @, no spaces or
# control characters, a dotted domain.  Non-ASCII addresses would need SMTPUTF8: refused.
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_FIELD = 200


@dataclass(frozen=True)
class RowError:
    line: int
    column: str
    message: str


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class ImportRejected(CadenceError):
    code = "import_rejected"
    hint = "fix the rows listed and import the file again: nothing was stored"

    def __init__(self, report: ImportReport) -> None:
        super().__init__(
            f"{len(report.errors)} problem(s) in {report.rows} row(s); nothing was imported",
            detail={"errors": [e.__dict__ for e in report.errors]},
        )
        self.report = report


@dataclass(frozen=True)
class ProspectRow:
    line: int
    email: str
    first_name: str | None
    last_name: str | None
    company: str | None
    title: str | None
    timezone: str | None
    custom: dict[str, str]


def _clean(value: Any) -> str | None:
    text = " ".join(str(value or "").split())  # also removes CR/LF inside quoted cells
    return text or None


def parse_csv(
    text: str,
    mapping: Mapping[str, str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[ProspectRow], ImportReport]:
    report = ImportReport()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in (reader.fieldnames or [])]
    rename = {k.strip(): v.strip() for k, v in (mapping or {}).items()}
    unknown_targets = set(rename.values()) - set(FIELDS)
    for col in sorted(set(rename) - set(header)):
        report.errors.append(RowError(1, col, "the mapping names a column the file does not have"))
    columns = {h: rename.get(h, h) for h in header}
    if "email" not in columns.values():
        report.errors.append(RowError(1, "email", "no email column (map one with --map)"))
        return [], report
    for col, target in columns.items():
        if target not in FIELDS and target not in unknown_targets and not _IDENTIFIER.match(target):
            report.errors.append(
                RowError(1, col, "a custom field name must be letters, digits and _")
            )
    rows: list[ProspectRow] = []
    seen: dict[str, int] = {}
    for record in reader:
        report.rows += 1
        line = reader.line_num
        values: dict[str, str | None] = {}
        custom: dict[str, str] = {}
        for col, raw in record.items():
            if col is None:
                report.errors.append(RowError(line, "", "more cells than header columns"))
                continue
            target = columns.get(col.strip(), col.strip())
            value = _clean(raw)
            if value and len(value) > _MAX_FIELD:
                report.errors.append(RowError(line, col, f"longer than {_MAX_FIELD} characters"))
            if target in FIELDS:
                values[target] = value
            elif value is not None:
                custom[target] = value
        email = (values.get("email") or "").lower()
        if not email:
            report.errors.append(RowError(line, "email", "missing"))
        elif not _EMAIL.match(email):
            report.errors.append(RowError(line, "email", f"not a valid address: {email!r}"))
        elif email in seen:
            report.errors.append(
                RowError(line, "email", f"{email} already appears on line {seen[email]}")
            )
        else:
            seen[email] = line
        tz = values.get("timezone")
        if tz:
            try:
                zone(tz)
            except CadenceError:
                report.errors.append(RowError(line, "timezone", f"unknown time zone {tz!r}"))
        rows.append(
            ProspectRow(
                line=line,
                email=email,
                first_name=values.get("first_name"),
                last_name=values.get("last_name"),
                company=values.get("company"),
                title=values.get("title"),
                timezone=tz,
                custom=custom,
            )
        )
        if progress is not None:
            progress(1)
    return rows, report


async def import_prospects(
    session: AsyncSession, rows: Iterable[ProspectRow], report: ImportReport
) -> ImportReport:
    """Store validated rows (the caller's transaction makes it all or nothing)."""
    if not report.ok:
        raise ImportRejected(report)
    rows = list(rows)
    repo = ProspectRepository(session)
    existing = await repo.by_emails([r.email for r in rows])
    new: list[Prospect] = []
    for row in rows:
        prospect = existing.get(row.email)
        if prospect is None:
            prospect = Prospect(email=row.email)
            new.append(prospect)
            report.created += 1
        else:
            report.updated += 1
        prospect.first_name = row.first_name
        prospect.last_name = row.last_name
        prospect.company = row.company
        prospect.title = row.title
        prospect.timezone = row.timezone
        prospect.custom_fields = dict(row.custom)
    await repo.add_all(new)
    return report
