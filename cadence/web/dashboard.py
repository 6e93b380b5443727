"""The dashboard: server-rendered pages (Jinja2, autoescaped) with plain forms and a few lines
of vanilla JavaScript — no Node build, nothing vendored.

Browser sessions: a random token in a signed, HttpOnly, SameSite=Lax cookie; the store keeps
its SHA-256 and a CSRF token that every form posts back.  Every page calls the same services
as the API (``cadence.api.services`` and the engine), so the rules are the ones the CLI has.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import UploadFile

from cadence.api.deps import SESSION_COOKIE, AppState, app_state
from cadence.api.routers.cadences import preview_step
from cadence.api.routers.mailboxes import watcher_health
from cadence.api.services import (
    CheckFailed,
    Connection,
    apply_owned_cadence,
    cadence_yaml,
    connect_mailbox,
    discover_settings,
    import_owned_prospects,
)
from cadence.engine import accounts, enrollment_actions, listings
from cadence.engine.accounts import Principal
from cadence.engine.enrollments import enroll
from cadence.engine.prospects import ImportRejected, ImportReport
from cadence.engine.stats import cadence_figures
from cadence.errors import CadenceError
from cadence.mail.diagnose import CheckReport
from cadence.store.models import MailboxStatus

router = APIRouter(include_in_schema=False)
TEMPLATES = Path(__file__).resolve().parent / "templates" / "dash"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_env = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass
class Viewer:
    who: Principal
    csrf: str
    name: str


class Redirect(Exception):
    def __init__(self, url: str) -> None:
        self.url = url


def _render(name: str, request: Request, viewer: Viewer | None, **context: Any) -> HTMLResponse:
    template = _env.get_template(name)
    html = template.render(
        request=request, viewer=viewer, path=request.url.path, days=DAYS, **context
    )
    return HTMLResponse(html, headers=_SECURITY_HEADERS)


_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self'; script-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


async def _viewer(request: Request, state: AppState) -> Viewer | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    token = state.unsign_session(cookie) if cookie else None
    if not token:
        return None
    async with state.runtime.db.transaction() as s:
        found = await accounts.session_user(s, token, state.now())
        if found is None:
            return None
        user, session_row = found
        return Viewer(Principal.of(user), session_row.csrf_token, user.name or user.email)


async def _require(request: Request) -> tuple[AppState, Viewer]:
    state = app_state(request)
    viewer = await _viewer(request, state)
    if viewer is None:
        raise Redirect("/login?next=" + quote(request.url.path))
    return state, viewer


async def _form(request: Request, viewer: Viewer | None) -> dict[str, Any]:
    """The posted form, after checking its CSRF token."""
    form = await request.form()
    data: dict[str, Any] = {}
    for key, value in form.multi_items():
        if key in data:
            existing = data[key]
            data[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            data[key] = value
    if viewer is not None:
        sent = data.get("csrf")
        if not isinstance(sent, str) or not hmac.compare_digest(
            sent.encode(), viewer.csrf.encode()
        ):
            raise CadenceError(
                "this form expired; reload the page and try again",
                code="csrf_failed",
                hint="reload the page",
            )
    return data


def _s(data: dict[str, Any], key: str, default: str = "") -> str:
    value = data.get(key, default)
    if isinstance(value, list):
        value = value[-1] if value else default
    text = value if isinstance(value, str) else default
    return text.replace("\x00", "").strip()


def _int(data: dict[str, Any], key: str, default: int) -> int:
    try:
        return int(_s(data, key, str(default)) or default)
    except ValueError:
        return default


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _page(handler: Any) -> Any:
    """Turn a missing session into a redirect to the sign-in page."""
    import functools

    @functools.wraps(handler)
    async def wrapped(request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            result: Response = await handler(request, *args, **kwargs)
            return result
        except Redirect as go:
            return _redirect(go.url)
        except CadenceError as exc:
            if exc.code != "csrf_failed":
                raise
            page = _render("error.html.j2", request, None, message=exc.message, hint=exc.hint)
            page.status_code = 400
            return page

    return wrapped


# -- first run, sign-in -----------------------------------------------------------------------


@router.get("/setup")
async def setup_page(request: Request, token: str = "") -> Response:
    state = app_state(request)
    if state.setup_token is None:
        return _redirect("/login")
    return _render("setup.html.j2", request, None, token=token, error=None, form={})


@router.post("/setup")
async def setup_submit(request: Request) -> Response:
    state = app_state(request)
    data = await _form(request, None)
    token = _s(data, "token")
    expected = state.setup_token
    if expected is None:
        return _redirect("/login")
    error: str | None = None
    if not hmac.compare_digest(token.encode(), expected.encode()):
        error = "This setup link is not valid: use the link `cadence serve` printed."
    elif _s(data, "password") != _s(data, "password2"):
        error = "The two passwords differ."
    if error is None:
        try:
            async with state.runtime.db.transaction() as s:
                user = await accounts.create_first_admin(
                    s,
                    email=_s(data, "email"),
                    password=_s(data, "password"),
                    name=_s(data, "name") or None,
                    team_name=_s(data, "team") or None,
                    now=state.now(),
                )
                session_token, _ = await accounts.start_session(s, user, state.now())
        except CadenceError as exc:
            error = f"{exc.message}. {exc.hint}".strip()
    if error is not None:
        return _render("setup.html.j2", request, None, token=token, error=error, form=data)
    state.setup_token = None
    response = _redirect("/mailboxes/connect")
    _set_cookie(response, state, session_token, request)
    return response


def _set_cookie(response: Response, state: AppState, token: str, request: Request) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        state.sign_session(token),
        max_age=int(accounts.SESSION_TTL.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


@router.get("/login")
async def login_page(request: Request, next: str = "/") -> Response:
    state = app_state(request)
    if state.setup_token is not None:
        async with state.runtime.db.transaction() as s:
            if await accounts.count_users(s) == 0:
                return _render("first_run.html.j2", request, None)
    return _render("login.html.j2", request, None, error=None, next=_safe_next(next), email="")


def _safe_next(value: str) -> str:
    return value if value.startswith("/") and not value.startswith("//") else "/"


@router.post("/login")
async def login_submit(request: Request) -> Response:
    state = app_state(request)
    data = await _form(request, None)
    email, password = _s(data, "email"), _s(data, "password")
    nxt = _safe_next(_s(data, "next", "/"))
    try:
        async with state.runtime.db.transaction() as s:
            user = await accounts.authenticate(s, email, password)
            token, _ = await accounts.start_session(s, user, state.now())
    except CadenceError as exc:
        return _render("login.html.j2", request, None, error=exc.message, next=nxt, email=email)
    response = _redirect(nxt)
    _set_cookie(response, state, token, request)
    return response


@router.post("/logout")
@_page
async def logout(request: Request) -> Response:
    state, viewer = await _require(request)
    await _form(request, viewer)
    token = state.unsign_session(request.cookies.get(SESSION_COOKIE, ""))
    if token:
        async with state.runtime.db.transaction() as s:
            await accounts.end_session(s, token)
    response = _redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- overview -------------------------------------------------------------------------------------


async def _mailbox_rows(state: AppState, viewer: Viewer) -> list[dict[str, Any]]:
    from datetime import timedelta

    from cadence.store.repositories import MailboxRepository

    rows: list[dict[str, Any]] = []
    async with state.runtime.db.transaction() as s:
        found = await listings.mailboxes(s, viewer.who, status=None, limit=200, offset=0)
        for m in found.items:
            sent = await MailboxRepository(s).sends_since(m.id, state.now() - timedelta(days=1))
            rows.append(
                {
                    "m": m,
                    "sent_today": sent,
                    "watcher": watcher_health(state, m.id, m.address),
                }
            )
    return rows


@router.get("/")
@_page
async def home(request: Request) -> Response:
    state, viewer = await _require(request)
    boxes = await _mailbox_rows(state, viewer)
    async with state.runtime.db.transaction() as s:
        found = await listings.cadences(s, viewer.who, name=None, limit=50, offset=0)
        funnels = [(c, await cadence_figures(s, c)) for c in found.items]
        recent = await listings.activity(
            s, viewer.who, kind=None, mailbox_id=None, prospect_id=None,
            enrollment_id=None, cadence_id=None, limit=8, offset=0,
        )  # fmt: skip
        prospects = await listings.prospects(s, viewer.who, q=None, company=None, limit=1, offset=0)
    return _render(
        "home.html.j2",
        request,
        viewer,
        boxes=boxes,
        funnels=funnels,
        recent=recent.items,
        prospect_count=prospects.total,
        reply_text=listings.reply_text_of,
    )


# -- mailboxes ------------------------------------------------------------------------------------


@router.get("/mailboxes")
@_page
async def mailboxes_page(request: Request) -> Response:
    state, viewer = await _require(request)
    boxes = await _mailbox_rows(state, viewer)
    return _render("mailboxes.html.j2", request, viewer, boxes=boxes)


@router.post("/mailboxes/{mailbox_id:int}/{action}")
@_page
async def mailbox_action(request: Request, mailbox_id: int, action: str) -> Response:
    state, viewer = await _require(request)
    await _form(request, viewer)
    if action not in ("pause", "resume"):
        return _redirect("/mailboxes")
    async with state.runtime.db.transaction() as s:
        mailbox = await listings.mailbox(s, viewer.who, mailbox_id)
        if mailbox is not None:
            if action == "pause":
                mailbox.status, mailbox.status_reason = MailboxStatus.PAUSED, "paused by a user"
            elif mailbox.status == MailboxStatus.PAUSED:
                mailbox.status, mailbox.status_reason = MailboxStatus.ACTIVE, None
    state.rescan_watchers()
    return _redirect("/mailboxes")


@router.get("/mailboxes/connect")
@_page
async def connect_start(request: Request) -> Response:
    _state, viewer = await _require(request)
    return _render("connect_email.html.j2", request, viewer, email="", error=None)


def _settings_from_discovery(email: str, found: Any) -> dict[str, Any]:
    form: dict[str, Any] = {"email": email, "username": email, "timezone": "UTC",
                            "daily_cap": 50, "imap_port": 993, "smtp_port": 587,
                            "imap_security": "tls", "smtp_security": "starttls"}  # fmt: skip
    best = found.best if found is not None else None
    if best is not None:
        if best.imap is not None:
            form.update(
                imap_host=best.imap.host,
                imap_port=best.imap.port,
                imap_security=best.imap.security.value,
            )
        if best.smtp is not None:
            form.update(
                smtp_host=best.smtp.host,
                smtp_port=best.smtp.port,
                smtp_security=best.smtp.security.value,
            )
        form["username"] = best.username or email
    return form


@router.post("/mailboxes/connect/discover")
@_page
async def connect_discover(request: Request) -> Response:
    state, viewer = await _require(request)
    data = await _form(request, viewer)
    email = _s(data, "email")
    if "@" not in email:
        return _render(
            "connect_email.html.j2",
            request,
            viewer,
            email=email,
            error="Type the mailbox's full email address, such as rita@example.com.",
        )
    found = None
    note = None
    try:
        found = await discover_settings(email, state.runtime, timeout=8.0)
    except CadenceError as exc:
        note = f"Discovery did not answer ({exc.message}): type the settings your IT gave you."
    if found is not None and found.best is None:
        note = "No settings were found for this address: type the ones your IT gave you."
    elif found is not None and found.best is not None and not found.best.verified:
        note = "These settings were found but could not be verified: check them."
    form = _settings_from_discovery(email, found)
    return _render(
        "connect_settings.html.j2",
        request,
        viewer,
        form=form,
        note=note,
        provider=getattr(found.best, "provider", None) if found and found.best else None,
        source=getattr(found.best, "source", None) if found and found.best else None,
        report=None,
        error=None,
    )


@router.post("/mailboxes/connect/check")
@_page
async def connect_check(request: Request) -> Response:
    state, viewer = await _require(request)
    data = await _form(request, viewer)
    email = _s(data, "email")
    conn = Connection(
        email=email,
        password=_s(data, "password"),
        username=_s(data, "username") or None,
        imap_host=_s(data, "imap_host"),
        imap_port=_int(data, "imap_port", 993),
        imap_security=_s(data, "imap_security") or None,
        smtp_host=_s(data, "smtp_host"),
        smtp_port=_int(data, "smtp_port", 587),
        smtp_security=_s(data, "smtp_security") or None,
        ca_file=_s(data, "ca_file") or None,
        timeout=20.0,
    )
    limits = {
        "display_name": _s(data, "display_name") or None,
        "daily_cap": max(1, min(_int(data, "daily_cap", 50), 10000)),
        "timezone": _s(data, "timezone") or "UTC",
    }
    form = {k: v for k, v in data.items() if k not in ("password", "csrf")}
    report: CheckReport | None = None
    error: str | None = None
    saved = None
    if not conn.password or not conn.imap_host or not conn.smtp_host:
        error = "Fill in the IMAP host, the SMTP host and the password."
    elif conn.imap_security not in (None, "tls", "starttls") or conn.smtp_security not in (
        None, "tls", "starttls",
    ):  # fmt: skip
        error = "Security is TLS or STARTTLS."
    else:
        try:
            saved, report, _ = await connect_mailbox(state.runtime, viewer.who, conn, limits=limits)
            state.keep_report(saved.id, report)
            state.rescan_watchers()
        except CheckFailed as exc:
            report = exc.report
            error = exc.message
        except CadenceError as exc:
            error = f"{exc.message}. {exc.hint}".strip(". ") + "."
    return _render(
        "connect_settings.html.j2" if saved is None else "connect_done.html.j2",
        request,
        viewer,
        form=form,
        note=None,
        provider=None,
        source=None,
        report=report,
        error=error,
        mailbox=saved,
    )


@router.get("/mailboxes/{mailbox_id:int}/report")
@_page
async def mailbox_report(request: Request, mailbox_id: int) -> Response:
    from cadence.api.routers.mailboxes import _recheck
    from cadence.web.it_report import render_html

    state, viewer = await _require(request)
    async with state.runtime.db.transaction() as s:
        if await listings.mailbox(s, viewer.who, mailbox_id) is None:
            return _redirect("/mailboxes")
    report = state.check_reports.get(mailbox_id) or await _recheck(state, viewer.who, mailbox_id)
    return HTMLResponse(render_html(report))


# -- cadences ------------------------------------------------------------------------------------


@router.get("/cadences")
@_page
async def cadences_page(request: Request) -> Response:
    state, viewer = await _require(request)
    async with state.runtime.db.transaction() as s:
        found = await listings.cadences(s, viewer.who, name=None, limit=200, offset=0)
        funnels = [(c, await cadence_figures(s, c)) for c in found.items]
    return _render("cadences.html.j2", request, viewer, funnels=funnels)


def _blank_step(position: int) -> dict[str, Any]:
    return {"type": "email", "subject": "", "body": "", "delay_business_days": 2 if position else 0,
            "delay_hours": 0, "window_days": "", "window_from": "", "window_to": "",
            "reply_in_thread": position > 0}  # fmt: skip


def _step_dict(step: Any) -> dict[str, Any]:
    return {
        "type": step.type,
        "subject": step.subject or "",
        "body": step.body or "",
        "delay_business_days": step.delay_business_days,
        "delay_hours": step.delay_hours,
        "window_days": step.window_days or "",
        "window_from": step.window_from or "",
        "window_to": step.window_to or "",
        "reply_in_thread": step.reply_in_thread,
    }


async def _editor(
    request: Request,
    state: AppState,
    viewer: Viewer,
    cadence_id: int | None,
    form: dict[str, Any] | None = None,
    error: str | None = None,
    message: str | None = None,
) -> Response:
    preview_for = request.query_params.get("preview")
    async with state.runtime.db.sessions() as s:
        cadence = await listings.cadence(s, viewer.who, cadence_id) if cadence_id else None
        if cadence_id and cadence is None:
            return _redirect("/cadences")
        if form is None:
            form = {
                "name": cadence.name if cadence else "",
                "description": (cadence.description or "") if cadence else "",
                "steps": [_step_dict(st) for st in cadence.steps] if cadence else [_blank_step(0)],
            }
        prospects = await listings.prospects(s, viewer.who, q=None, company=None, limit=200,
                                             offset=0)  # fmt: skip
        boxes = await listings.mailboxes(s, viewer.who, status=None, limit=200, offset=0)
        previews: list[Any] = []
        chosen = None
        figures = None
        if cadence is not None:
            figures = await cadence_figures(s, cadence)
            if preview_for and preview_for.isdigit():
                chosen = await listings.prospect(s, viewer.who, int(preview_for))
            if chosen is not None:
                mailbox = boxes.items[0] if boxes.items else None
                for n in range(1, len(cadence.steps) + 1):
                    previews.append(
                        await preview_step(s, state, viewer.who, cadence, chosen, mailbox, n)
                    )
        # Rendered before the rollback (which expires what the session loaded): the preview
        # stored nothing, and nothing of it must be kept.
        response = _render(
            "cadence_edit.html.j2",
            request,
            viewer,
            cadence=cadence,
            form=form,
            error=error,
            message=message,
            prospects=prospects.items,
            mailboxes=boxes.items,
            previews=previews,
            chosen=chosen,
            figures=figures,
        )
        await s.rollback()
    return response


@router.get("/cadences/new")
@_page
async def cadence_new(request: Request) -> Response:
    state, viewer = await _require(request)
    return await _editor(request, state, viewer, None)


@router.get("/cadences/{cadence_id:int}")
@_page
async def cadence_edit(request: Request, cadence_id: int) -> Response:
    state, viewer = await _require(request)
    return await _editor(request, state, viewer, cadence_id, message=request.query_params.get("m"))


def _steps_from_form(data: dict[str, Any]) -> list[dict[str, Any]]:
    count = max(0, min(_int(data, "step_count", 1), 50))
    steps: list[dict[str, Any]] = []
    for i in range(count):
        if _s(data, f"s{i}_remove"):
            continue
        days = data.get(f"s{i}_days", [])
        days = [d for d in (days if isinstance(days, list) else [days]) if d in DAYS]
        steps.append(
            {
                "type": _s(data, f"s{i}_type", "email") or "email",
                "subject": _s(data, f"s{i}_subject"),
                "body": _s(data, f"s{i}_body"),
                "delay_business_days": max(0, _int(data, f"s{i}_delay_days", 0)),
                "delay_hours": max(0, _int(data, f"s{i}_delay_hours", 0)),
                "window_days": ",".join(days),
                "window_from": _s(data, f"s{i}_from"),
                "window_to": _s(data, f"s{i}_to"),
                "reply_in_thread": bool(_s(data, f"s{i}_reply")),
            }
        )
    return steps


def _yaml_steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for st in steps:
        d: dict[str, Any] = {"type": st["type"]}
        if st["subject"]:
            d["subject"] = st["subject"]
        if st["body"]:
            d["body"] = st["body"]
        delay = {k: v for k, v in (("business_days", st["delay_business_days"]),
                                   ("hours", st["delay_hours"])) if v}  # fmt: skip
        if delay:
            d["delay"] = delay
        if st["window_days"]:
            d["window"] = {
                "days": st["window_days"].split(","),
                "from": st["window_from"] or "00:00",
                "to": st["window_to"] or "24:00",
            }
        if st["reply_in_thread"]:
            d["reply_in_thread"] = True
        out.append(d)
    return out


@router.post("/cadences/save")
@_page
async def cadence_save(request: Request) -> Response:
    state, viewer = await _require(request)
    data = await _form(request, viewer)
    cadence_id = _int(data, "cadence_id", 0) or None
    steps = _steps_from_form(data)
    form: dict[str, Any] = {
        "name": _s(data, "name"),
        "description": _s(data, "description"),
        "steps": steps,
    }
    if _s(data, "add_step"):
        form["steps"] = [*steps, _blank_step(len(steps))]
        return await _editor(request, state, viewer, cadence_id, form=form)
    if not steps:
        return await _editor(request, state, viewer, cadence_id, form=form,
                             error="A cadence needs at least one step.")  # fmt: skip
    text = cadence_yaml(form["name"], form["description"] or None, _yaml_steps(steps))
    try:
        async with state.runtime.db.transaction() as s:
            result = await apply_owned_cadence(
                s, viewer.who, text, cadence_id=cadence_id, source=form["name"] or "cadence"
            )
    except CadenceError as exc:
        return await _editor(request, state, viewer, cadence_id, form=form,
                             error=f"{exc.message}. {exc.hint}".strip(". ") + ".")  # fmt: skip
    return _redirect(f"/cadences/{result.cadence_id}?m=saved")


@router.post("/cadences/{cadence_id:int}/enroll")
@_page
async def cadence_enroll(request: Request, cadence_id: int) -> Response:
    state, viewer = await _require(request)
    data = await _form(request, viewer)
    mailbox_id = _int(data, "mailbox_id", 0)
    try:
        async with state.runtime.db.transaction() as s:
            cadence = await listings.cadence(s, viewer.who, cadence_id)
            mailbox = await listings.mailbox(s, viewer.who, mailbox_id) if mailbox_id else None
            if cadence is None or mailbox is None:
                return _redirect(f"/cadences/{cadence_id}?m=choose+a+mailbox")
            emails = await listings.owned_prospect_emails(s, viewer.who)
            result = await enroll(
                s, cadence_name=cadence.name, mailbox_address=mailbox.address,
                emails=emails, now=state.now(),
            ) if emails else None  # fmt: skip
    except CadenceError as exc:
        return _redirect(f"/cadences/{cadence_id}?m=" + quote(exc.message))
    n = result.enrolled if result else 0
    return _redirect(f"/cadences/{cadence_id}?m=" + quote(f"{n} prospect(s) enrolled"))


# -- prospects -----------------------------------------------------------------------------------


@router.get("/prospects")
@_page
async def prospects_page(request: Request) -> Response:
    state, viewer = await _require(request)
    return await _prospects(request, state, viewer, None, None)


async def _prospects(
    request: Request,
    state: AppState,
    viewer: Viewer,
    report: ImportReport | None,
    error: str | None,
) -> Response:
    q = (request.query_params.get("q") or "").replace("\x00", "")[:200] or None
    offset = request.query_params.get("offset", "0")
    off = int(offset) if offset.isdigit() and len(offset) < 9 else 0
    async with state.runtime.db.transaction() as s:
        found = await listings.prospects(s, viewer.who, q=q, company=None, limit=50, offset=off)
    return _render(
        "prospects.html.j2",
        request,
        viewer,
        prospects=found.items,
        total=found.total,
        offset=off,
        q=q or "",
        report=report,
        error=error,
    )


@router.post("/prospects/import")
@_page
async def prospects_import(request: Request) -> Response:
    state, viewer = await _require(request)
    data = await _form(request, viewer)
    upload = data.get("file")
    text = _s(data, "csv")
    if isinstance(upload, UploadFile) and upload.filename:
        raw = await upload.read(20_000_001)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            return await _prospects(request, state, viewer, None, "The file is not UTF-8 text.")
    if not text.strip():
        return await _prospects(request, state, viewer, None, "Choose a CSV file or paste rows.")
    try:
        async with state.runtime.db.transaction() as s:
            report = await import_owned_prospects(s, viewer.who, text.replace("\x00", ""), None)
    except ImportRejected as exc:
        return await _prospects(request, state, viewer, exc.report, None)
    except CadenceError as exc:
        return await _prospects(request, state, viewer, None, exc.message)
    return await _prospects(request, state, viewer, report, None)


# -- enrollments and activity -------------------------------------------------------------------


@router.post("/enrollments/{enrollment_id:int}/{action}")
@_page
async def enrollment_action(request: Request, enrollment_id: int, action: str) -> Response:
    state, viewer = await _require(request)
    data = await _form(request, viewer)
    back = _safe_next(_s(data, "next", "/activity"))
    try:
        async with state.runtime.db.transaction() as s:
            if await listings.enrollment(s, viewer.who, enrollment_id) is None:
                return _redirect(back)
            reason = f"{action} by {viewer.who.email}"
            if action == "pause":
                await enrollment_actions.pause(s, enrollment_id, state.now(), reason)
            elif action == "resume":
                await enrollment_actions.resume(s, enrollment_id, state.now(), None)
            elif action == "stop":
                await enrollment_actions.stop(s, enrollment_id, state.now(), reason)
    except CadenceError:
        pass
    return _redirect(back)


@router.get("/activity")
@_page
async def activity_page(request: Request) -> Response:
    state, viewer = await _require(request)
    cadence_param = request.query_params.get("cadence", "")
    cadence_id = int(cadence_param) if cadence_param.isdigit() and len(cadence_param) < 9 else None
    async with state.runtime.db.transaction() as s:
        found = await listings.activity(
            s, viewer.who, kind=None, mailbox_id=None, prospect_id=None,
            enrollment_id=None, cadence_id=cadence_id, limit=100, offset=0,
        )  # fmt: skip
        cadences = await listings.cadences(s, viewer.who, name=None, limit=200, offset=0)
        enrollments = await listings.enrollments(
            s, viewer.who, cadence_id=cadence_id, prospect_id=None, mailbox_id=None,
            state=None, limit=200, offset=0,
        )  # fmt: skip
        prospects = {
            p.id: p
            for p in await listings.prospects_by_ids(
                s, viewer.who, sorted({a.prospect_id for a in found.items if a.prospect_id})
            )
        }
    return _render(
        "activity.html.j2",
        request,
        viewer,
        items=found.items,
        cadences=cadences.items,
        cadence_id=cadence_id,
        enrollments=enrollments.items,
        prospects=prospects,
        reply_text=listings.reply_text_of,
    )
