"""Prospects: create, read, update, delete, and CSV import with a report per row."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, UploadFile, status

from cadence.api.deps import Pages, State, Who
from cadence.api.errors import not_found
from cadence.api.schemas import (
    ImportIn,
    ImportOut,
    Page,
    ProspectIn,
    ProspectOut,
    ProspectPatch,
    RowErrorOut,
)
from cadence.api.services import import_owned_prospects, one_row_csv
from cadence.engine import listings
from cadence.engine.prospects import ImportReport
from cadence.engine.scheduling import zone
from cadence.errors import UsageError
from cadence.store.repositories import ProspectRepository

router = APIRouter(prefix="/prospects", tags=["prospects"])
ProspectId = Annotated[int, Path(ge=1, le=2**31 - 1)]
MAX_UPLOAD = 20_000_000


def _report(report: ImportReport) -> ImportOut:
    return ImportOut(
        ok=report.ok,
        rows=report.rows,
        created=report.created,
        updated=report.updated,
        errors=[
            RowErrorOut(line=e.line, column=e.column, message=e.message) for e in report.errors
        ],
    )


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    return value.replace("\x00", "").encode("utf-8", "ignore").decode("utf-8") or None


@router.get("")
async def list_prospects(
    who: Who,
    state: State,
    pages: Pages,
    q: Annotated[str | None, Query(max_length=200, description="Search text.")] = None,
    company: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[ProspectOut]:
    async with state.runtime.db.transaction() as s:
        found = await listings.prospects(
            s, who, q=_clean(q), company=_clean(company), limit=pages.limit, offset=pages.offset
        )
        return Page(
            items=[ProspectOut.model_validate(p) for p in found.items],
            total=found.total,
            limit=pages.limit,
            offset=pages.offset,
        )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_prospect(body: ProspectIn, who: Who, state: State) -> ProspectOut:
    """Add one prospect, checked by the same rules as a CSV row."""
    async with state.runtime.db.transaction() as s:
        if await ProspectRepository(s).by_email(body.email) is not None:
            raise UsageError(
                f"a prospect {body.email.strip().lower()} already exists",
                code="prospect_exists",
                hint="update it with PATCH /api/v1/prospects/{id}",
            )
        text = one_row_csv(body.model_dump())
        await import_owned_prospects(s, who, text, None)
        prospect = await ProspectRepository(s).by_email(body.email)
        assert prospect is not None
        return ProspectOut.model_validate(prospect)


@router.post("/import")
async def import_csv(body: ImportIn, who: Who, state: State) -> ImportOut:
    """Import a CSV (header row: email, first_name, last_name, company, title, timezone,
    other columns become custom fields).  Every row is checked first; if any is wrong,
    nothing is stored and the answer is 422 `import_rejected` with each row's problem in
    `error.detail.errors`."""
    async with state.runtime.db.transaction() as s:
        report = await import_owned_prospects(s, who, body.csv, body.mapping)
    return _report(report)


@router.post("/import-file")
async def import_file(file: UploadFile, who: Who, state: State) -> ImportOut:
    """The same import, from a multipart file upload (UTF-8 CSV)."""
    data = await file.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise UsageError("the file is larger than 20 MB", code="file_too_large")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(
            "the file is not UTF-8 text", code="bad_encoding", hint="save the CSV as UTF-8"
        ) from None
    if "\x00" in text:
        raise UsageError("the file is not a CSV text file", code="bad_encoding")
    async with state.runtime.db.transaction() as s:
        report = await import_owned_prospects(s, who, text, None)
    return _report(report)


@router.get("/{prospect_id}")
async def get_prospect(prospect_id: ProspectId, who: Who, state: State) -> ProspectOut:
    async with state.runtime.db.transaction() as s:
        prospect = await listings.prospect(s, who, prospect_id)
        if prospect is None:
            raise not_found("prospect", prospect_id)
        return ProspectOut.model_validate(prospect)


@router.patch("/{prospect_id}")
async def update_prospect(
    prospect_id: ProspectId, body: ProspectPatch, who: Who, state: State
) -> ProspectOut:
    changes = body.model_dump(exclude_unset=True)
    if changes.get("timezone"):
        zone(changes["timezone"])
    async with state.runtime.db.transaction() as s:
        prospect = await listings.prospect(s, who, prospect_id)
        if prospect is None:
            raise not_found("prospect", prospect_id)
        for key, value in changes.items():
            if key == "do_not_contact":
                prospect.do_not_contact = bool(value)
            else:
                text = " ".join(str(value or "").split()) or None
                setattr(prospect, key, text)
        await s.flush()
        return ProspectOut.model_validate(prospect)


@router.delete("/{prospect_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_prospect(prospect_id: ProspectId, who: Who, state: State) -> None:
    """Delete the prospect and their enrollments."""
    async with state.runtime.db.transaction() as s:
        prospect = await listings.prospect(s, who, prospect_id)
        if prospect is None:
            raise not_found("prospect", prospect_id)
        await s.delete(prospect)
