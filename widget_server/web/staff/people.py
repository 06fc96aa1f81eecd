"""Data-protection requests: find a person by email, export their data as JSON (subject access),
erase them. Owners only; each step audited with the address masked."""

from __future__ import annotations

import json

from starlette.responses import Response

from widget_server import messages
from widget_server.core.signform import normalise_email
from widget_server.errors import Invalid
from widget_server.services import people
from widget_server.services.audit import mask_email
from widget_server.web.staff.common import Staff, confirm_page, confirmed, staff_view


@staff_view("own")
async def people_page(staff: Staff) -> Response:
    """GET /admin/people."""
    return staff.render("people.html", {})


@staff_view("own")
async def find(staff: Staff) -> Response:
    """POST /admin/people/find: the email travels in the body, never the address bar or a log."""
    email = staff.form.get("email", "")
    try:
        found = await people.person_data(staff.store, email)
    except Invalid as exc:
        return staff.render("people.html", {"error": exc.message, "email": email}, 400)
    address = normalise_email(email)
    await staff.audit("person found", subject=mask_email(address), detail=f"{len(found)} signatures")
    return staff.render("people.html", {"email": address, "found": found, "searched": True})


@staff_view("own")
async def export(staff: Staff) -> Response:
    """POST /admin/people/export: everything kept about the address, as a JSON download."""
    email = staff.form.get("email", "")
    found = await people.person_data(staff.store, email)
    address = normalise_email(email)
    await staff.audit("person exported", subject=mask_email(address), detail=f"{len(found)} signatures (JSON)")
    body = json.dumps({"email": address, "signatures": found}, indent=2, ensure_ascii=False)
    return Response(
        body,
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="subject-access.json"'},
    )


@staff_view("own")
async def erase(staff: Staff) -> Response:
    """POST /admin/people/erase: after a confirmation, every signature of the address goes."""
    email = staff.form.get("email", "")
    address = people.checked_email(email)
    if not confirmed(staff):
        found = await people.person_data(staff.store, email)
        return confirm_page(
            staff,
            f"Erase {address}?",
            f"This deletes {len(found)} signature{'s' if len(found) != 1 else ''} of {address} from every"
            " pledge, and the counts go down to match. It cannot be undone. The audit log keeps only a masked"
            " address.",
            "Erase this person",
            "/admin/people",
        )
    erased = await people.erase_person(staff.store, email)
    detail = f"{erased.signatures} signatures" + ("" if erased.scrubbed else "; old copy still held by a reader")
    await staff.audit("person erased", subject=mask_email(address), detail=detail)
    return staff.render("people.html", {"done": messages.erased(erased.signatures, erased.scrubbed)})
