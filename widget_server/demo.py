"""`widget-server demo`: a real pledge, two partners, the widget server and a partner's page.

The partner's page is examples/embed.html served from a second port, which is another
origin, so the newcomer sees exactly what a partner's visitors see.
"""

from __future__ import annotations

import asyncio

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from widget_server import logs
from widget_server.files import EXAMPLE_PAGE
from widget_server.server import config, graceful_sigterm
from widget_server.services import partners, pledges
from widget_server.services.partners import PartnerCredentials
from widget_server.settings import Settings
from widget_server.storage.engines import open_store

EXAMPLE_SERVER = "http://127.0.0.1:8000"
EXAMPLE_TOKEN = "PASTE-PARTNER-TOKEN-HERE"

SLUG = "public-services-data-firewall"
TITLE = "Ask public services to keep our data away from immigration enforcement"
GOAL = 10_000
STATEMENT = """
<p>When a family registers with a doctor, enrols a child at school or asks a job centre for
help, they hand over an address, a date of birth, sometimes a medical history. They share it so
that the service can help them, and for nothing else.</p>
<p>Some of that information is passed on to immigration enforcement. When people hear this, some
stop seeing a doctor, keep their children at home or go without help they are owed. A public
service that people are afraid to use fails everyone, not only the people who stay away.</p>
<p>We are asking every public service to put a firewall between the help it gives and
immigration enforcement, and to say so publicly.</p>
<blockquote><p>“I call on schools, hospitals, GP surgeries, job centres and police forces to
promise that the personal information they hold about the people they serve will not be handed
to the Home Office for immigration enforcement.”</p></blockquote>
"""
PARTNERS = ("Riverside Migrant Support", "Northgate Nurses Network")


async def prepare(settings: Settings, partner_origin: str) -> PartnerCredentials:
    """Create the demo pledge and partners if absent; the first partner is the page's."""
    async with open_store(settings.database) as store:
        if await store.pledge_by_slug(SLUG) is None:
            await pledges.add_pledge(
                store,
                slug=SLUG,
                title=TITLE,
                statement_html=STATEMENT,
                goal=GOAL,
                contact="call 0300 000 0000 (demo number) or reply to any email from us",
            )
        pledge = await pledges.find_pledge(store, SLUG)
        for index, name in enumerate(PARTNERS):
            origin = partner_origin if index == 0 else "https://northgate-nurses.example"
            partner = await store.partner_by_name(pledge.id, name)
            if partner is None:
                await partners.add_partner(store, settings, SLUG, name, [origin])
            elif index == 0 and partner.origins != (origin,):
                # The demo was last run on other ports: follow them.
                await store.set_partner_origins(partner.id, [origin])
        return partners.credentials(settings, pledge, await partners.find_partner(store, pledge, PARTNERS[0]))


def partner_site(creds: PartnerCredentials, public_url: str) -> Starlette:
    page = EXAMPLE_PAGE.read_text(encoding="utf-8")
    page = page.replace(EXAMPLE_TOKEN, creds.token).replace(EXAMPLE_SERVER, public_url)

    async def home(request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    return Starlette(routes=[Route("/", home)])


def run_demo(settings: Settings, host: str, port: int, partner_port: int) -> None:
    logs.configure()
    partner_origin = f"http://localhost:{partner_port}"
    creds = asyncio.run(prepare(settings, partner_origin))
    widget_server = uvicorn.Server(config(settings, host, port))
    partner_server = uvicorn.Server(
        uvicorn.Config(partner_site(creds, settings.public_url), host=host, port=partner_port, log_config=None)
    )

    async def announce() -> None:
        while not (widget_server.started and partner_server.started):
            await asyncio.sleep(0.05)
        print(
            f"\n  Widget server:  {settings.public_url}\n"
            f"  Partner's page: {partner_origin}/   <- open this in a browser and sign\n"
            f"  Then:           widget-server stats {SLUG}\n"
            "  Stop with Ctrl-C.\n",
            flush=True,
        )

    async def both() -> None:
        await asyncio.gather(widget_server.serve(), partner_server.serve(), announce())

    with graceful_sigterm():
        asyncio.run(both())
