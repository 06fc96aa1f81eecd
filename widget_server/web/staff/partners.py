"""Partners: create one with its origins and hand over its snippets; edit its origins, rotate
its token, revoke and reinstate it, each after a page that says what will happen."""

from __future__ import annotations

from starlette.responses import Response

from widget_server import messages
from widget_server.core.models import Partner, Pledge
from widget_server.errors import Conflict, Invalid, NotFound
from widget_server.services import partners, webhooks
from widget_server.services.partner_links import link_for
from widget_server.web.staff.common import Staff, confirm_page, confirmed, redirect, staff_view


def _origins(text: str) -> list[str]:
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


def _where(partner: Partner) -> str:
    hosts = [origin.split("://", 1)[-1] for origin in partner.origins]
    return " and ".join(hosts) if len(hosts) < 3 else f"{', '.join(hosts[:-1])} and {hosts[-1]}"


def _delay(staff: Staff) -> str:
    seconds = staff.services.settings.cache_seconds
    return "at once" if seconds <= 0 else f"within {seconds:g} second{'s' if seconds != 1 else ''}"


async def _partner(staff: Staff, pledge: Pledge) -> Partner:
    text = staff.request.path_params["partner_id"]
    partner = await staff.store.partner_by_id(int(text)) if text.isdigit() else None
    if partner is None or partner.pledge_id != pledge.id:
        raise NotFound(f"Pledge {pledge.slug!r} has no such partner.")
    return partner


@staff_view("campaign")
async def partners_page(staff: Staff) -> Response:
    """GET /admin/pledges/{slug}/partners: every partner, and the form to add one."""
    pledge = await staff.pledge()
    return staff.render("partners.html", {"pledge": pledge, "partners": await staff.store.partners_of(pledge.id)})


@staff_view("campaign")
async def create_partner(staff: Staff) -> Response:
    """POST /admin/pledges/{slug}/partners."""
    pledge = await staff.pledge()
    name, origins = staff.form.get("name", ""), _origins(staff.form.get("origins", ""))
    try:
        creds = await partners.add_partner(staff.store, staff.services.settings, pledge.slug, name, origins)
    except (Invalid, Conflict) as exc:
        context = {
            "pledge": pledge,
            "partners": await staff.store.partners_of(pledge.id),
            "error": exc.message,
            "values": staff.form,
        }
        return staff.render("partners.html", context, 400)
    await staff.audit(
        "partner created", pledge=pledge.slug, subject=creds.partner.name, detail=", ".join(creds.partner.origins)
    )
    return redirect(f"/admin/pledges/{pledge.slug}/partners/{creds.partner.id}?created=1")


async def _detail(staff: Staff, pledge: Pledge, partner: Partner, **extra: object) -> Response:
    creds = partners.credentials(staff.services.settings, pledge, partner)
    context = {
        "pledge": pledge,
        "partner": partner,
        "snippets": creds.snippets,
        "report_link": link_for(staff.services.settings, partner),
        "created": staff.request.query_params.get("created") == "1",
        **extra,
    }
    status = 400 if "error" in extra else 200
    return staff.render("partner.html", context, status)


@staff_view("campaign")
async def partner_page(staff: Staff) -> Response:
    """GET /admin/pledges/{slug}/partners/{id}: snippets to copy, the report link, the actions."""
    pledge = await staff.pledge()
    partner = await _partner(staff, pledge)
    await staff.audit("partner link shown", pledge=pledge.slug, subject=partner.name)
    return await _detail(staff, pledge, partner)


@staff_view("campaign")
async def edit_origins(staff: Staff) -> Response:
    """POST …/origins: new origins need a new token, so the old snippet stops working."""
    pledge = await staff.pledge()
    partner = await _partner(staff, pledge)
    origins = _origins(staff.form.get("origins", ""))
    if not confirmed(staff):
        return confirm_page(
            staff,
            f"Change where {partner.name}'s widget may appear?",
            f"The snippet on {_where(partner)} stops working {_delay(staff)}. {partner.name} will need the new"
            " snippet shown on the next page, pasted on its pages at the new addresses.",
            "Change the origins and issue a new snippet",
            f"/admin/pledges/{pledge.slug}/partners/{partner.id}",
        )
    try:
        changed = await partners.set_origins(staff.store, pledge.slug, partner.name, origins)
    except Invalid as exc:
        return await _detail(staff, pledge, partner, error=exc.message)
    await staff.audit("origins edited", pledge=pledge.slug, subject=partner.name, detail=", ".join(changed.origins))
    return await _detail(staff, pledge, changed, done="Origins changed: send the partner the new snippet below.")


@staff_view("campaign")
async def rotate(staff: Staff) -> Response:
    """POST …/rotate."""
    pledge = await staff.pledge()
    partner = await _partner(staff, pledge)
    if not confirmed(staff):
        return confirm_page(
            staff,
            f"Issue a new snippet for {partner.name}?",
            f"The snippet now on {_where(partner)} stops working {_delay(staff)}, and so does its report link."
            f" {partner.name} must paste the new snippet shown on the next page.",
            "Issue a new snippet",
            f"/admin/pledges/{pledge.slug}/partners/{partner.id}",
        )
    creds = await partners.rotate_partner(staff.store, staff.services.settings, pledge.slug, partner.name)
    await staff.audit("token rotated", pledge=pledge.slug, subject=partner.name)
    return await _detail(staff, pledge, creds.partner, done="New snippet issued: send it to the partner.")


@staff_view("campaign")
async def revoke(staff: Staff) -> Response:
    """POST …/revoke."""
    pledge = await staff.pledge()
    partner = await _partner(staff, pledge)
    if not confirmed(staff):
        return confirm_page(
            staff,
            f"Revoke {partner.name}?",
            f"The snippet on {_where(partner)} stops working {_delay(staff)}: its form and counter show that the"
            " widget has been switched off, and its report link closes. Its signatures stay counted and credited"
            " to it. You can reinstate it later with the same snippet.",
            f"Revoke {partner.name}",
            f"/admin/pledges/{pledge.slug}/partners/{partner.id}",
        )
    await partners.revoke_partner(staff.store, pledge.slug, partner.name)
    await staff.audit("partner revoked", pledge=pledge.slug, subject=partner.name)
    refreshed = await _partner(staff, pledge)
    return await _detail(staff, pledge, refreshed, done=f"{partner.name} is revoked.")


@staff_view("campaign")
async def reinstate(staff: Staff) -> Response:
    """POST …/reinstate: the snippet already on the partner's pages works again."""
    pledge = await staff.pledge()
    partner = await _partner(staff, pledge)
    if not confirmed(staff):
        return confirm_page(
            staff,
            f"Reinstate {partner.name}?",
            f"The snippet already on {_where(partner)} works again {_delay(staff)}, and so does its report link.",
            f"Reinstate {partner.name}",
            f"/admin/pledges/{pledge.slug}/partners/{partner.id}",
        )
    back = await staff.store.reinstate_partner(partner.id)
    await staff.audit("partner reinstated", pledge=pledge.slug, subject=partner.name)
    return await _detail(staff, pledge, back, done=f"{partner.name} is reinstated.")


@staff_view("campaign")
async def webhook(staff: Staff) -> Response:
    """POST …/webhook: send the partner's consenting signatures to a URL, with a new secret shown on the
    page this once; or, with off=yes, stop. Replacing a webhook or switching it off is confirmed first."""
    pledge = await staff.pledge()
    partner = await _partner(staff, pledge)
    back = f"/admin/pledges/{pledge.slug}/partners/{partner.id}"
    if staff.form.get("off") == "yes":
        if not confirmed(staff):
            return confirm_page(
                staff,
                f"Switch off {partner.name}'s webhook?",
                f"Signatures stop being sent to {partner.webhook_url or 'it'}, and messages still waiting for it are"
                f" not sent. {partner.name} can still download its opted-in supporters from you as a file.",
                "Switch the webhook off",
                back,
            )
        _, saved, had = await webhooks.remove_webhook(staff.store, pledge.slug, partner.name)
        if had:
            await staff.audit("webhook removed", pledge=pledge.slug, subject=partner.name)
        said = messages.WEBHOOK_OFF if had else messages.WEBHOOK_WAS_OFF
        return await _detail(staff, pledge, saved, done=said.format(name=partner.name))
    settings = staff.services.settings
    try:
        url = webhooks.checked_url(staff.form.get("url", ""), settings)
    except Invalid as exc:
        return await _detail(staff, pledge, partner, error=exc.message, webhook_url=staff.form.get("url", ""))
    if partner.webhook_url and not confirmed(staff):
        return confirm_page(
            staff,
            f"Replace {partner.name}'s webhook?",
            f"Signatures will go to {url}, signed with a new secret shown on the next page: until {partner.name}"
            " has it, its system cannot verify them. The old secret stops working now.",
            "Replace the webhook and make a new secret",
            back,
        )
    done = await webhooks.set_webhook(staff.store, settings, pledge.slug, partner.name, url)
    # The secret goes on this page only: never into the audit log, a redirect's URL or a later page.
    await staff.audit("webhook set", pledge=pledge.slug, subject=partner.name, detail=webhooks.audit_detail(url))
    return await _detail(
        staff,
        pledge,
        done.partner,
        done=messages.WEBHOOK_SET.format(name=partner.name, url=url),
        secret=done.secret,
        secret_note=messages.WEBHOOK_SECRET_ONCE.format(name=partner.name),
    )
