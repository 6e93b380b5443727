"""Templates: sandboxed, fallbacks work, a missing variable is a clear error, not "Hi ,"."""

from __future__ import annotations

import pytest

from cadence.engine.templates import (
    MissingVariable,
    ProspectFields,
    TemplateError,
    check_syntax,
    render,
    template_context,
)


def _ctx(**fields: str | None) -> dict[str, object]:
    return template_context(
        ProspectFields(email="pat@example.test", **fields),  # type: ignore[arg-type]
        "Rita Rep",
        "rep@cadence.test",
    )


def test_fields_and_fallbacks() -> None:
    ctx = _ctx(first_name="Pat", company="Acme")
    assert render("Hi {{ first_name }} at {{ company }}", ctx, "body") == "Hi Pat at Acme"
    assert render('Hi {{ first_name | default("there") }}', _ctx(), "body") == "Hi there"
    assert render("— {{ sender.name }}", ctx, "body") == "— Rita Rep"


def test_empty_field_counts_as_missing() -> None:
    with pytest.raises(MissingVariable) as info:
        render("Hi {{ first_name }},", _ctx(first_name=""), "step 1 body")
    err = info.value
    assert err.variable == "first_name"
    assert "step 1 body" in err.message and "no first_name" in err.message
    assert 'default("...")' in err.hint
    assert (
        render('Hi {{ first_name | default("there") }},', _ctx(first_name=""), "b") == "Hi there,"
    )


def test_custom_fields_are_available() -> None:
    ctx = template_context(
        ProspectFields(email="p@x.test", custom={"favourite_tool": "Cadence", "bad key": "x"}),
        None,
        "rep@cadence.test",
    )
    assert render("{{ favourite_tool }}", ctx, "body") == "Cadence"
    assert "bad key" not in ctx


def test_sandbox_blocks_python_internals() -> None:
    with pytest.raises(TemplateError):
        render("{{ ''.__class__.__mro__[1].__subclasses__() }}", _ctx(), "body")


def test_syntax_errors_are_reported_at_apply_time() -> None:
    with pytest.raises(TemplateError) as info:
        check_syntax("Hi {{ first_name ", "step 1 subject")
    assert "step 1 subject" in info.value.message


def test_html_is_autoescaped() -> None:
    ctx = _ctx(first_name="<script>x</script>")
    assert "&lt;script&gt;" in render("<p>{{ first_name }}</p>", ctx, "html", html=True)
