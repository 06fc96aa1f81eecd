"""Organisations that signed: counted with the signature, listed publicly only once approved."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import Signer, make_partner, make_pledge, on_db
from widget_server.errors import NotFound
from widget_server.services import organisations, people
from widget_server.storage.store import open_store


def orgs(settings, status: str | None = None) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    return on_db(settings, lambda store: organisations.organisations(store, "data-firewall", status))


def review(settings, name: str, status: str) -> None:  # type: ignore[no-untyped-def]
    on_db(settings, lambda store: organisations.review_organisation(store, "data-firewall", name, status))


def test_organisations_are_counted_in_the_same_transaction_as_signatures(settings, make_client, clock) -> None:  # type: ignore[no-untyped-def]
    make_pledge(settings)
    client = make_client(settings)
    signer = Signer(client, clock)
    signer.sign(email="a@example.org", organisation="Hill School")
    signer.sign(email="b@example.org", organisation="hill school")  # the same organisation
    signer.sign(email="c@example.org", organisation="St Mary's Hospital")
    signer.sign(email="d@example.org")
    signer.sign(email="a@example.org", organisation="Hill School")  # signed already: not counted again
    found = {o["name"]: (o["signatures"], o["status"]) for o in orgs(settings)}
    assert found == {"Hill School": (2, "pending"), "St Mary's Hospital": (1, "pending")}


def test_only_approved_organisations_are_shown_in_public(settings, make_client, clock) -> None:  # type: ignore[no-untyped-def]
    make_pledge(settings)
    client = make_client(settings)
    signer = Signer(client, clock)
    signer.sign(email="a@example.org", organisation="Hill School")
    signer.sign(email="b@example.org", organisation="Totally Real Ministry <b>")
    page = client.get("/pledge/data-firewall/organisations")
    assert page.status_code == 200
    assert "Organisations that have signed the pledge so far" in page.text
    assert "Hill School" not in page.text  # pending: anyone can type any name
    assert client.get("/api/pledges/data-firewall/organisations").json() == {"organisations": []}

    review(settings, "HILL SCHOOL", "approved")
    review(settings, "Totally Real Ministry <b>", "hidden")
    page = client.get("/pledge/data-firewall/organisations")
    assert "<li>Hill School</li>" in page.text
    assert "Totally Real Ministry" not in page.text
    api = client.get("/api/pledges/data-firewall/organisations")
    assert api.json() == {"organisations": ["Hill School"]}
    assert api.headers["access-control-allow-origin"] == "*"
    assert page.headers["content-security-policy"].endswith("frame-ancestors 'none'")
    assert {o["name"]: o["status"] for o in orgs(settings)} == {
        "Hill School": "approved",
        "Totally Real Ministry <b>": "hidden",
    }
    assert [o["name"] for o in orgs(settings, "approved")] == ["Hill School"]


def test_an_approved_name_is_escaped_in_the_public_list(settings, make_client, clock) -> None:  # type: ignore[no-untyped-def]
    make_pledge(settings)
    client = make_client(settings)
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    Signer(client, clock).sign(organisation=hostile)
    review(settings, hostile, "approved")
    page = client.get("/pledge/data-firewall/organisations").text
    assert "<script>alert" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert client.get("/api/pledges/data-firewall/organisations").json() == {"organisations": [hostile]}


def test_reviewing_an_unknown_organisation_is_a_clear_error(settings) -> None:  # type: ignore[no-untyped-def]
    make_pledge(settings)
    try:
        review(settings, "Nobody Ltd", "approved")
    except NotFound as error:
        assert "No organisation called 'Nobody Ltd' has signed" in error.message
    else:
        raise AssertionError("reviewing an unknown organisation must fail")


def test_migration_fills_organisations_from_existing_signatures(settings, make_client, clock) -> None:  # type: ignore[no-untyped-def]
    """A database from before the organisations table gets it filled from its signatures."""
    import sqlite3

    from widget_server.storage.sqlite import db

    make_pledge(settings)
    client = make_client(settings)
    Signer(client, clock).sign(email="a@example.org", organisation="Hill School")
    Signer(client, clock).sign(email="b@example.org", organisation="HILL SCHOOL")
    conn = sqlite3.connect(settings.database)
    conn.executescript("DROP TABLE organisations; PRAGMA user_version = 1;")
    conn.close()
    db.migrate(settings.database)
    found = orgs(settings)
    assert [(o["name"].lower(), o["signatures"]) for o in found] == [("hill school", 2)]


def test_erasing_a_person_corrects_every_kept_count(settings, make_client, clock) -> None:  # type: ignore[no-untyped-def]
    make_pledge(settings)
    make_pledge(settings, slug="second-pledge", title="Second")
    creds = make_partner(settings)
    client = make_client(settings)
    Signer(client, clock, token=creds.token).sign(email="ana@example.org", organisation="Solo Org")
    Signer(client, clock, slug="second-pledge").sign(email="ana@example.org")
    Signer(client, clock, token=creds.token).sign(email="bo@example.org", organisation="Hill School")

    async def go() -> tuple[list[dict[str, Any]], int, list[dict[str, Any]], list[str]]:
        async with open_store(settings.database) as store:
            before = await people.person_data(store, " ANA@example.org ")
            erased = await people.erase_person(store, "ana@example.org")
            after = await people.person_data(store, "ana@example.org")
            return before, erased, after, await store.integrity()

    before, erased, after, problems = asyncio.run(go())
    assert [(row["pledge"], row["partner"], row["organisation"]) for row in before] == [
        ("data-firewall", "Riverside", "Solo Org"),
        ("second-pledge", "", ""),
    ]
    assert erased == 2
    assert after == []
    assert problems == []
    assert [o["name"] for o in orgs(settings)] == ["Hill School"]  # a name nobody stands behind is gone
    from tests.conftest import stats

    first = stats(settings)
    assert (first["total"], first["partners"][0]["count"]) == (1, 1)
    assert sum(day["total"] for day in first["days"]) == 1
    assert stats(settings, "second-pledge")["total"] == 0


def test_erased_details_are_not_left_readable_in_the_database_files(settings, make_client, clock) -> None:  # type: ignore[no-untyped-def]
    make_pledge(settings)
    client = make_client(settings)
    Signer(client, clock).sign(name="Erasable Person", email="erase.me@example.org", occupation="Midwife")
    Signer(client, clock).sign(email="stays@example.org")

    async def go() -> int:
        async with open_store(settings.database) as store:
            return await people.erase_person(store, "erase.me@example.org")

    assert asyncio.run(go()) == 1
    files = [p for p in settings.database.parent.iterdir() if p.name.startswith(settings.database.name)]
    for path in files:
        content = path.read_bytes()
        assert b"erase.me@example.org" not in content, path.name
        assert b"Erasable Person" not in content, path.name
    assert any(b"stays@example.org" in p.read_bytes() for p in files)  # the check can see a stored email
