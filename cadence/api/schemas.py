"""Request and response bodies of the HTTP API (pydantic), with bounds on every field so that
a malformed request is a 422, never a database error."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

T = TypeVar("T")


def _clean_text(value: str) -> str:
    # PostgreSQL refuses NUL in text; a lone surrogate cannot be stored as UTF-8 anywhere.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


Str100000 = Annotated[
    str, StringConstraints(min_length=0, max_length=100_000), AfterValidator(_clean_text)
]
Str1000Min1 = Annotated[
    str, StringConstraints(min_length=1, max_length=1000), AfterValidator(_clean_text)
]
Str1024 = Annotated[
    str, StringConstraints(min_length=0, max_length=1024), AfterValidator(_clean_text)
]
Str10Min10 = Annotated[
    str, StringConstraints(min_length=10, max_length=10), AfterValidator(_clean_text)
]
Str200 = Annotated[
    str, StringConstraints(min_length=0, max_length=200), AfterValidator(_clean_text)
]
Str2000 = Annotated[
    str, StringConstraints(min_length=0, max_length=2000), AfterValidator(_clean_text)
]
Str200000 = Annotated[
    str, StringConstraints(min_length=0, max_length=200_000), AfterValidator(_clean_text)
]
Str20000000Min1 = Annotated[
    str, StringConstraints(min_length=1, max_length=20_000_000), AfterValidator(_clean_text)
]
Str2000Min8 = Annotated[
    str, StringConstraints(min_length=8, max_length=2000), AfterValidator(_clean_text)
]
Str200Min1 = Annotated[
    str, StringConstraints(min_length=1, max_length=200), AfterValidator(_clean_text)
]
Str255Min1 = Annotated[
    str, StringConstraints(min_length=1, max_length=255), AfterValidator(_clean_text)
]
Str320 = Annotated[
    str, StringConstraints(min_length=0, max_length=320), AfterValidator(_clean_text)
]
Str320Min3 = Annotated[
    str, StringConstraints(min_length=3, max_length=320), AfterValidator(_clean_text)
]
Str40Min1 = Annotated[
    str, StringConstraints(min_length=1, max_length=40), AfterValidator(_clean_text)
]
Str5000 = Annotated[
    str, StringConstraints(min_length=0, max_length=5000), AfterValidator(_clean_text)
]
Str5Min4 = Annotated[
    str, StringConstraints(min_length=4, max_length=5), AfterValidator(_clean_text)
]
Str64 = Annotated[str, StringConstraints(min_length=0, max_length=64), AfterValidator(_clean_text)]
Str64Min1 = Annotated[
    str, StringConstraints(min_length=1, max_length=64), AfterValidator(_clean_text)
]
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
Port = Annotated[int, Field(ge=1, le=65535)]
Security = Literal["tls", "starttls"]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class ErrorInfo(BaseModel):
    code: str
    message: str
    hint: str = ""
    detail: dict[str, Any] | None = None


class ErrorBody(BaseModel):
    error: ErrorInfo


# -- accounts ------------------------------------------------------------------------------


class SetupIn(BaseModel):
    setup_token: Str200Min1
    email: Str320Min3
    password: Str1000Min1
    name: Str200 | None = None
    team: Str200 | None = None


class LoginIn(BaseModel):
    email: Str320Min3
    password: Str1000Min1
    token_name: Str200 = "api"


class UserIn(BaseModel):
    email: Str320Min3
    password: Str1000Min1
    name: Str200 | None = None
    is_admin: bool = False
    team: Str200 | None = None


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    email: str
    name: str | None
    is_admin: bool
    team_id: int | None


class TokenIn(BaseModel):
    name: Str200 = "api"


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class NewTokenOut(BaseModel):
    token: str = Field(description="Shown once: only its SHA-256 is stored.")
    id: int
    user: UserOut


# -- mailboxes -------------------------------------------------------------------------------


class DiscoverIn(BaseModel):
    email: Str320Min3
    timeout: float = Field(10.0, gt=0, le=60)


class ConnectionIn(BaseModel):
    """How to reach a mailbox: the same fields as ``cadence check``."""

    email: Str320Min3
    password: Str1000Min1 = Field(repr=False)
    username: Str320 | None = None
    imap_host: Str255Min1
    imap_port: Port = 993
    imap_security: Security | None = None
    smtp_host: Str255Min1
    smtp_port: Port = 587
    smtp_security: Security | None = None
    ca_file: Str1024 | None = Field(
        None, description="A CA bundle on the server's disk (admins only)."
    )
    timeout: float = Field(20.0, gt=0, le=120)


class CheckIn(ConnectionIn):
    send_test: bool = False


class MailboxIn(ConnectionIn):
    display_name: Str200 | None = None
    daily_cap: int = Field(50, ge=1, le=10000)
    min_gap_seconds: int = Field(90, ge=0, le=86400)
    jitter_seconds: int = Field(60, ge=0, le=86400)
    timezone: Str64Min1 = "UTC"
    work_days: Str40Min1 = "mon,tue,wed,thu,fri"
    work_from: Str5Min4 = "09:00"
    work_to: Str5Min4 = "17:00"
    holidays: list[Str10Min10] = Field(default_factory=list, max_length=400)


class MailboxOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    address: str
    display_name: str | None
    username: str
    imap_host: str
    imap_port: int
    imap_security: str
    smtp_host: str
    smtp_port: int
    smtp_security: str
    daily_cap: int
    min_gap_seconds: int
    jitter_seconds: int
    timezone: str
    work_days: str
    work_from: str
    work_to: str
    holidays: list[str]
    server_files_sent: bool | None
    status: str
    status_reason: str | None
    last_send_at: datetime | None
    owner_id: int | None
    created_at: datetime


class MailboxHealth(BaseModel):
    mailbox_id: int
    status: str
    status_reason: str | None
    sent_today: int
    daily_cap: int
    watcher: dict[str, Any]


# -- cadences ----------------------------------------------------------------------------------


class DelayIn(BaseModel):
    business_days: int = Field(0, ge=0, le=365)
    hours: int = Field(0, ge=0, le=24 * 365)


Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _weekdays() -> list[Day]:
    return ["mon", "tue", "wed", "thu", "fri"]


class WindowIn(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    days: list[Day] = Field(default_factory=_weekdays, min_length=1, max_length=7)
    start: Str5Min4 = Field("09:00", alias="from")
    end: Str5Min4 = Field("17:00", alias="to")


class StepIn(BaseModel):
    type: Literal["email", "manual_email", "call", "task"] = "email"
    subject: Str2000 | None = None
    body: Str100000 = ""
    html: Str200000 | None = None
    delay: DelayIn | None = None
    window: WindowIn | None = None
    reply_in_thread: bool = False


class CadenceIn(BaseModel):
    name: Str200Min1
    description: Str5000 | None = None
    steps: list[StepIn] = Field(min_length=1, max_length=50)


class StepOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    position: int
    type: str
    subject: str | None
    body: str
    html: str | None
    delay_business_days: int
    delay_hours: int
    window_days: str | None
    window_from: str | None
    window_to: str | None
    reply_in_thread: bool


class CadenceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    description: str | None
    owner_id: int | None
    created_at: datetime
    updated_at: datetime
    steps: list[StepOut]


class PreviewIn(BaseModel):
    prospect_id: Id
    step: int = Field(1, ge=1, le=50, description="1-based")
    mailbox_id: Id | None = None


class PreviewOut(BaseModel):
    step: int
    held: bool
    reason: str | None = None
    hint: str | None = None
    from_: str | None = Field(None, alias="from")
    to: str | None = None
    subject: str | None = None
    in_reply_to: str | None = None
    text: str | None = None


class StepStats(BaseModel):
    step: int
    type: str
    sent: int
    replied: int
    bounced: int
    out_of_office: int
    reply_rate: float


class CadenceStats(BaseModel):
    cadence_id: int
    enrolled: int
    active: int
    contacted: int
    sent: int
    replied: int
    bounced: int
    out_of_office: int
    finished: int
    reply_rate: float
    steps: list[StepStats]


# -- prospects -----------------------------------------------------------------------------------


class ProspectIn(BaseModel):
    email: Str320Min3
    first_name: Str200 | None = None
    last_name: Str200 | None = None
    company: Str200 | None = None
    title: Str200 | None = None
    timezone: Str64 | None = None
    custom_fields: dict[Str64Min1, Str200] = Field(default_factory=dict, max_length=50)


class ProspectPatch(BaseModel):
    first_name: Str200 | None = None
    last_name: Str200 | None = None
    company: Str200 | None = None
    title: Str200 | None = None
    timezone: Str64 | None = None
    do_not_contact: bool | None = None


class ProspectOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    email: str
    first_name: str | None
    last_name: str | None
    company: str | None
    title: str | None
    timezone: str | None
    custom_fields: dict[str, Any]
    do_not_contact: bool
    owner_id: int | None
    created_at: datetime


class ImportIn(BaseModel):
    csv: Str20000000Min1
    mapping: dict[Str200Min1, Str64Min1] = Field(default_factory=dict, max_length=50)


class RowErrorOut(BaseModel):
    line: int
    column: str
    message: str


class ImportOut(BaseModel):
    ok: bool
    rows: int
    created: int
    updated: int
    errors: list[RowErrorOut]


# -- enrollments --------------------------------------------------------------------------------


class EnrollIn(BaseModel):
    cadence_id: Id
    mailbox_id: Id
    prospect_ids: list[Id] | None = Field(
        None, max_length=10000, description="None: every prospect of yours not enrolled yet"
    )


class EnrollOut(BaseModel):
    enrolled: int
    already: int
    do_not_contact: int


class ResumeIn(BaseModel):
    unknown_outcome: Literal["sent", "resend"] | None = None


class EnrollmentOut(BaseModel):
    id: int
    prospect_id: int
    prospect: str
    cadence_id: int
    cadence: str
    mailbox_id: int
    mailbox: str
    state: str
    step: int
    next_due_at: datetime | None
    paused_until: datetime | None
    reason: str | None


# -- activity and webhooks -----------------------------------------------------------------------


class ActivityOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    at: datetime
    kind: str
    mailbox_id: int | None
    enrollment_id: int | None
    prospect_id: int | None
    message: str
    data: dict[str, Any]
    reply_text: str | None = None


class WebhookIn(BaseModel):
    url: Str2000Min8
    events: list[Str64Min1] = Field(default_factory=list, max_length=20)


class WebhookOut(BaseModel):
    id: int
    url: str
    events: list[str]
    active: bool
    secret: str | None = Field(None, description="Shown once, when the webhook is created.")
    created_at: datetime | None = None
