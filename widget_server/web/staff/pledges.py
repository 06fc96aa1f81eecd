"""Creating and editing a pledge: texts, goal, optional questions, privacy and contact, email
confirmation, open or closed."""

from __future__ import annotations

from starlette.responses import Response

from widget_server.errors import Conflict, Invalid
from widget_server.services import pledges
from widget_server.services.pledge_settings import OPTIONAL_FIELDS, edit_pledge
from widget_server.web.staff.common import Staff, number, redirect, staff_view


def _form_values(staff: Staff) -> dict[str, object]:
    form = staff.form
    return {
        "title": form.get("title", ""),
        "statement_html": form.get("statement", ""),
        "goal": number(form.get("goal", ""), "The goal"),
        "privacy_url": form.get("privacy_url", "").strip() or None,
        "contact": form.get("contact", "").strip() or None,
        "optional_fields": [f for f in OPTIONAL_FIELDS if form.get(f"field_{f}")],
        "closed": form.get("status") == "closed",
        "confirm_email": form.get("confirm_email") == "yes",
    }


@staff_view("campaign")
async def new_pledge_page(staff: Staff) -> Response:
    """GET /admin/pledges/new."""
    return staff.render("pledge_form.html", {"pledge": None, "fields": OPTIONAL_FIELDS, "values": {}})


@staff_view("campaign")
async def create_pledge(staff: Staff) -> Response:
    """POST /admin/pledges."""
    slug = staff.form.get("slug", "").strip()
    try:
        values = _form_values(staff)
        await pledges.add_pledge(
            staff.store,
            slug=slug,
            title=str(values["title"]),
            statement_html=str(values["statement_html"]),
            goal=values["goal"],  # type: ignore[arg-type]
            privacy_url=values["privacy_url"],  # type: ignore[arg-type]
            contact=values["contact"],  # type: ignore[arg-type]
            confirm_email=bool(values["confirm_email"]),
            settings=staff.services.settings,
        )
        await edit_pledge(
            staff.store,
            slug,
            optional_fields=values["optional_fields"],  # type: ignore[arg-type]
            closed=bool(values["closed"]),
        )
    except (Invalid, Conflict) as exc:
        return staff.render(
            "pledge_form.html",
            {"pledge": None, "fields": OPTIONAL_FIELDS, "values": staff.form, "error": exc.message},
            400,
        )
    await staff.audit("pledge created", pledge=slug)
    return redirect(f"/admin/pledges/{slug}")


@staff_view("campaign")
async def edit_pledge_page(staff: Staff) -> Response:
    """GET /admin/pledges/{slug}/edit."""
    pledge = await staff.pledge()
    return staff.render("pledge_form.html", {"pledge": pledge, "fields": OPTIONAL_FIELDS, "values": {}})


@staff_view("campaign")
async def save_pledge(staff: Staff) -> Response:
    """POST /admin/pledges/{slug}/edit."""
    pledge = await staff.pledge()
    try:
        values = _form_values(staff)
        saved, changed = await edit_pledge(
            staff.store,
            pledge.slug,
            settings=staff.services.settings,
            **values,  # type: ignore[arg-type]
        )
    except Invalid as exc:
        return staff.render(
            "pledge_form.html",
            {"pledge": pledge, "fields": OPTIONAL_FIELDS, "values": staff.form, "error": exc.message},
            400,
        )
    edits = [c for c in changed if c not in ("closed", "opened")]
    if edits:
        await staff.audit("pledge edited", pledge=saved.slug, detail=", ".join(edits))
    if "closed" in changed:
        await staff.audit("pledge closed", pledge=saved.slug)
    if "opened" in changed:
        await staff.audit("pledge opened", pledge=saved.slug)
    return staff.render(
        "pledge_form.html",
        {
            "pledge": saved,
            "fields": OPTIONAL_FIELDS,
            "values": {},
            "done": "Saved. The widget shows the changes within a few seconds." if changed else "Nothing had changed.",
        },
    )
