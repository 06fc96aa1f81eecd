"""Organisations that signed: counted with the signature, listed publicly only once approved."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import Signer, make_partner, make_pledge, on_db
from widget_server.errors import NotFound
from widget_server.services import organisations, people
from widget_server.storage.engines import open_store


def orgs(settings, status: str | None = None) -> list[dict[str, Any]]:
    return on_db(settings, lambda store: organisations.organisations(store, "data-firewall", status))


def review(settings, name: str, status: str) -> None:
    on_db(settings, lambda store: organisations.review_organisation(store, "data-firewall", name, status))


def test_organisations_are_counted_in_the_same_transaction_as_signatures(settings, make_client, clock) -> None:
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


def test_only_approved_organisations_are_shown_in_public(settings, make_client, clock) -> None:
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


def test_an_approved_name_is_escaped_in_the_public_list(settings, make_client, clock) -> None:
    make_pledge(settings)
    client = make_client(settings)
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    Signer(client, clock).sign(organisation=hostile)
    review(settings, hostile, "approved")
    page = client.get("/pledge/data-firewall/organisations").text
    assert "<script>alert" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert client.get("/api/pledges/data-firewall/organisations").json() == {"organisations": [hostile]}


def test_reviewing_an_unknown_organisation_is_a_clear_error(settings) -> None:
    make_pledge(settings)
    try:
        review(settings, "Nobody Ltd", "approved")
    except NotFound as error:
        assert "No organisation called 'Nobody Ltd' has signed" in error.message
    else:
        raise AssertionError("reviewing an unknown organisation must fail")


def test_migration_fills_organisations_from_existing_signatures(settings, make_client, clock) -> None:
    """A database from before the organisations table gets it filled from its signatures."""
    import sqlite3

    from widget_server.storage.sqlite import db

    make_pledge(settings)
    client = make_client(settings)
    Signer(client, clock).sign(email="a@example.org", organisation="Hill School")
    Signer(client, clock).sign(email="b@example.org", organisation="HILL SCHOOL")
    conn = sqlite3.connect(settings.database)
    # Back to how the table was before migration 0002, then 0002 again (later ones have run).
    conn.executescript("DROP TABLE organisations;")
    conn.executescript(dict(db.migrations())[2])
    conn.close()
    found = orgs(settings)
    assert [(o["name"].lower(), o["signatures"]) for o in found] == [("hill school", 2)]


def test_erasing_a_person_corrects_every_kept_count(settings, make_client, clock) -> None:
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
            erased = (await people.erase_person(store, "ana@example.org")).signatures
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


def test_erased_details_are_not_left_readable_in_the_database_files(settings, make_client, clock) -> None:
    make_pledge(settings)
    client = make_client(settings)
    Signer(client, clock).sign(name="Erasable Person", email="erase.me@example.org", occupation="Midwife")
    Signer(client, clock).sign(email="stays@example.org")

    async def go() -> people.Erasure:
        async with open_store(settings.database) as store:
            return await people.erase_person(store, "erase.me@example.org")

    assert asyncio.run(go()) == people.Erasure(signatures=1, scrubbed=True)
    files = [p for p in settings.database.parent.iterdir() if p.name.startswith(settings.database.name)]
    for path in files:
        content = path.read_bytes()
        assert b"erase.me@example.org" not in content, path.name
        assert b"Erasable Person" not in content, path.name
    assert any(b"stays@example.org" in p.read_bytes() for p in files)  # the check can see a stored email


def test_erasure_says_so_when_a_reader_still_holds_the_old_copy(settings, make_client, clock, tmp_path) -> None:
    """A backup or a long export reading the database keeps the erased rows in the WAL: the erasure
    is not reported complete until they are gone, and running it again then confirms it."""
    import sqlite3
    import subprocess
    import sys

    make_pledge(settings)
    client = make_client(settings)
    Signer(client, clock).sign(name="Erasable Person", email="erase.me@example.org")
    reader = sqlite3.connect(settings.database, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM signatures").fetchone()  # an open snapshot, as a backup holds

    def erase() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "widget_server.cli",
                "person",
                "erase",
                "erase.me@example.org",
                "--db",
                str(settings.database),
            ],
            capture_output=True,
            text=True,
            env={
                "WIDGET_SECRET_KEY": "test-secret-key-of-at-least-32-bytes",
                "WIDGET_DATA_DIR": str(tmp_path / "data"),
                "PATH": "/usr/bin:/bin",
            },
        )

    held = erase()
    assert held.returncode == 0, held.stderr
    assert "Erased 1 signature" in held.stdout and "still holds an old copy" in held.stdout
    reader.execute("COMMIT")
    reader.close()
    again = erase()
    assert "Erased 0 signatures" in again.stdout and "old copy" not in again.stdout
    for path in settings.database.parent.iterdir():
        if path.name.startswith(settings.database.name):
            assert b"erase.me@example.org" not in path.read_bytes(), path.name
