"""The staff area over HTTP: signing in and out, sessions that end, CSRF, what each role may do,
every page with data and with an empty pledge, and what each action leaves in the audit log."""

from __future__ import annotations

import re

import pytest

from tests.conftest import FakeClock, Signer, make_partner, make_pledge, on_db, rows, stats
from tests.staff.conftest import (
    PASSWORD,
    StaffClient,
    add_user,
    integrity,
    log_in,
    signature,
    write,
)
from widget_server.core.models import Partner, Pledge
from widget_server.settings import Settings

# Storage-facing behaviour: also run on PostgreSQL when the tests have one.
pytestmark = pytest.mark.both_engines

SLUG = "data-firewall"


def pledge_row(settings: Settings, slug: str = SLUG) -> Pledge:
    found = on_db(settings, lambda store: store.pledge_by_slug(slug))
    assert found is not None
    return found


def partner_row(settings: Settings, partner_id: int = 1) -> Partner:
    found = on_db(settings, lambda store: store.partner_by_id(partner_id))
    assert found is not None
    return found


def partner_named(settings: Settings, name: str) -> Partner:
    found = on_db(settings, lambda store: store.partner_by_name(1, name))
    assert found is not None
    return found


def audit_actions(settings: Settings) -> list[tuple[str, str, str, str]]:
    return [
        (r["actor"], r["action"], r["pledge"], r["subject"])
        for r in rows(settings, "SELECT * FROM audit_log ORDER BY id")
    ]


# Signing in and out ---------------------------------------------------------------------------


def test_signing_in_sets_a_strict_cookie_for_admin_only(make_client, settings: Settings) -> None:
    add_user(settings, "ana@campaign.example", "owner")
    client = make_client(settings)
    answer = log_in(client, "ana@campaign.example")
    assert answer.status_code == 303 and answer.headers["location"] == "/admin"
    cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and v.startswith("staff_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/admin" in cookie
    assert "Secure" not in cookie  # over plain http in the test; over https it is Secure (below)
    assert client.get("/admin").status_code == 200
    assert ("ana@campaign.example", "login", "", "") in audit_actions(settings)


def test_the_cookie_is_secure_over_https(make_client, settings: Settings) -> None:
    add_user(settings, "ana@campaign.example", "owner")
    client = make_client(settings, client_options={"base_url": "https://testserver"})
    answer = log_in(client, "ana@campaign.example")
    assert "Secure" in answer.headers["set-cookie"]


def test_a_wrong_password_is_refused_and_audited(make_client, settings: Settings) -> None:
    add_user(settings, "ana@campaign.example", "owner")
    client = make_client(settings)
    answer = log_in(client, "ana@campaign.example", "not the password")
    assert answer.status_code == 400
    assert "do not match an account" in answer.text
    assert "staff_session=" not in answer.headers.get("set-cookie", "")
    assert client.get("/admin", follow_redirects=False).status_code == 303
    assert ("ana@campaign.example", "login failed", "", "") in audit_actions(settings)


def test_unauthenticated_requests_go_to_the_sign_in_page(make_client, settings: Settings) -> None:
    make_pledge(settings)
    client = make_client(settings)
    for url in ("/admin", f"/admin/pledges/{SLUG}", "/admin/users", "/admin/nowhere"):
        answer = client.get(url, follow_redirects=False)
        assert answer.status_code == 303, url
        assert answer.headers["location"].startswith("/admin/login?next=")
    answer = client.post(f"/admin/pledges/{SLUG}/partners", data={"name": "X"}, follow_redirects=False)
    assert answer.status_code == 303


def test_the_sign_in_form_needs_its_own_csrf_token(make_client, settings: Settings) -> None:
    add_user(settings, "ana@campaign.example", "owner")
    client = make_client(settings)
    client.get("/admin/login")
    answer = client.post(
        "/admin/login", data={"email": "ana@campaign.example", "password": PASSWORD}, follow_redirects=False
    )
    assert answer.status_code == 403


def test_failed_sign_ins_are_held_for_a_while_not_forever(make_client, settings: Settings, clock: FakeClock) -> None:
    add_user(settings, "ana@campaign.example", "owner")
    client = make_client(settings)
    for _ in range(10):
        assert log_in(client, "ana@campaign.example", "wrong password!").status_code == 400
    held = log_in(client, "ana@campaign.example")  # the right password, while held
    assert held.status_code == 429 and "Too many failed sign-ins" in held.text
    assert int(held.headers["retry-after"]) <= 15 * 60
    clock.advance(15 * 60 + 1)
    assert log_in(client, "ana@campaign.example").status_code == 303


def test_failed_sign_ins_from_one_client_are_held_across_accounts(make_client, settings: Settings) -> None:
    add_user(settings, "ana@campaign.example", "owner")
    client = make_client(settings)
    for i in range(30):
        log_in(client, f"guess{i % 3}@campaign.example", "wrong password!")
    assert log_in(client, "ana@campaign.example").status_code == 429
    other = make_client(settings, host="10.0.0.9")
    assert log_in(other, "ana@campaign.example").status_code == 303


def test_signing_out_ends_the_session(staff_client, settings: Settings) -> None:
    staff = staff_client("viewer")
    answer = staff.post("/admin/logout")
    assert answer.status_code == 200 and "You have signed out" in answer.text
    assert staff.get("/admin", follow_redirects=False).status_code == 303
    assert (staff.email, "logout", "", "") in audit_actions(settings)


def test_an_idle_session_ends(staff_client, clock: FakeClock) -> None:
    staff = staff_client("viewer")
    clock.advance(29 * 60)
    assert staff.get("/admin").status_code == 200  # in use: moved on
    clock.advance(29 * 60)
    assert staff.get("/admin").status_code == 200
    clock.advance(31 * 60)
    answer = staff.get("/admin", follow_redirects=False)
    assert answer.status_code == 303


def test_a_busy_session_ends_after_its_lifetime(staff_client, clock: FakeClock) -> None:
    staff = staff_client("viewer")
    for _ in range(12 * 4):  # used every 15 minutes for 12 hours: never idle
        clock.advance(15 * 60)
        assert staff.get("/admin", follow_redirects=False).status_code == 200
    clock.advance(15 * 60)
    assert staff.get("/admin", follow_redirects=False).status_code == 303


def test_a_password_change_ends_the_other_sessions(staff_client, make_client, settings: Settings) -> None:
    staff = staff_client("campaigner")
    elsewhere = make_client(settings)
    assert log_in(elsewhere, staff.email).status_code == 303
    answer = staff.post(
        "/admin/account/password", {"current": PASSWORD, "new": "a new long password", "again": "a new long password"}
    )
    assert answer.status_code == 200 and "password is changed" in answer.text
    assert staff.get("/admin").status_code == 200  # this session carries on
    assert elsewhere.get("/admin", follow_redirects=False).status_code == 303
    assert log_in(elsewhere, staff.email, "a new long password").status_code == 303
    assert (staff.email, "password changed", "", staff.email) in audit_actions(settings)


def test_signing_out_everywhere_else(staff_client, make_client, settings: Settings) -> None:
    staff = staff_client("viewer")
    elsewhere = make_client(settings)
    log_in(elsewhere, staff.email)
    assert staff.post("/admin/account/sessions").status_code == 200
    assert staff.get("/admin").status_code == 200
    assert elsewhere.get("/admin", follow_redirects=False).status_code == 303


# CSRF and roles -------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["", "wrong-token"])
def test_a_post_without_the_sessions_csrf_token_is_refused(staff_client, settings: Settings, token: str) -> None:
    make_pledge(settings)
    staff = staff_client("owner")
    answer = staff.post(f"/admin/pledges/{SLUG}/partners", {"name": "X", "origins": "https://x.example"}, csrf=token)
    assert answer.status_code == 403
    assert on_db(settings, lambda store: store.partners_of(1)) == []


def test_a_post_from_another_site_is_refused_even_with_the_token(staff_client, settings: Settings) -> None:
    make_pledge(settings)
    staff = staff_client("owner")
    answer = staff.post(
        f"/admin/pledges/{SLUG}/partners",
        {"name": "X", "origins": "https://x.example"},
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert answer.status_code == 403


# (role, method, url, form): what each role may and may not do.
ACTIONS: list[tuple[str, str, str, dict[str, str]]] = [
    ("read", "GET", "/admin", {}),
    ("read", "GET", f"/admin/pledges/{SLUG}", {}),
    ("read", "GET", "/admin/account", {}),
    ("campaign", "GET", f"/admin/pledges/{SLUG}/partners", {}),
    ("campaign", "GET", f"/admin/pledges/{SLUG}/partners/1", {}),
    ("campaign", "POST", f"/admin/pledges/{SLUG}/partners", {"name": "New", "origins": "https://new.example"}),
    ("campaign", "POST", f"/admin/pledges/{SLUG}/partners/1/rotate", {}),
    ("campaign", "POST", f"/admin/pledges/{SLUG}/partners/1/revoke", {}),
    ("campaign", "POST", f"/admin/pledges/{SLUG}/partners/1/reinstate", {}),
    ("campaign", "POST", f"/admin/pledges/{SLUG}/partners/1/origins", {"origins": "https://r.example"}),
    ("campaign", "GET", "/admin/pledges/new", {}),
    ("campaign", "GET", f"/admin/pledges/{SLUG}/edit", {}),
    ("campaign", "POST", f"/admin/pledges/{SLUG}/edit", {"title": "T", "statement": "<p>S</p>", "status": "open"}),
    ("campaign", "GET", f"/admin/pledges/{SLUG}/organisations", {}),
    ("campaign", "POST", f"/admin/pledges/{SLUG}/organisations", {"name": "Hill School", "action": "approve"}),
    ("campaign", "GET", f"/admin/pledges/{SLUG}/abuse", {}),
    ("campaign", "GET", f"/admin/pledges/{SLUG}/export", {}),
    ("campaign", "GET", f"/admin/pledges/{SLUG}/export.csv", {}),
    ("own", "GET", "/admin/people", {}),
    ("own", "POST", "/admin/people/find", {"email": "ana@example.org"}),
    ("own", "POST", "/admin/people/export", {"email": "ana@example.org"}),
    ("own", "GET", "/admin/audit", {}),
    ("own", "GET", "/admin/users", {}),
    ("own", "POST", "/admin/users/role", {"email": "nobody@campaign.example", "role": "viewer"}),
]
ROLE_CAN = {"owner": {"read", "campaign", "own"}, "campaigner": {"read", "campaign"}, "viewer": {"read"}}


@pytest.mark.parametrize("role", ["owner", "campaigner", "viewer"])
def test_each_role_is_allowed_and_refused_exactly_its_actions(
    staff_client, settings: Settings, clock: FakeClock, role: str
) -> None:
    make_pledge(settings)
    make_partner(settings)
    staff = staff_client(role)
    for capability, method, url, form in ACTIONS:
        answer = staff.get(url) if method == "GET" else staff.post(url, form)
        allowed = capability in ROLE_CAN[role]
        if allowed:
            assert answer.status_code in (200, 303, 400, 404), (role, url, answer.status_code, answer.text[:300])
            assert "cannot do this" not in answer.text, (role, url)
        else:
            assert answer.status_code == 403, (role, url, answer.status_code)
            assert f"Your account ({role}) cannot do this" in answer.text


# Every page, with data and with an empty pledge ------------------------------------------------

PAGES = [
    "/admin",
    f"/admin/pledges/{SLUG}",
    f"/admin/pledges/{SLUG}?sort=name&order=asc",
    f"/admin/pledges/{SLUG}?partner=direct",
    f"/admin/pledges/{SLUG}/partners",
    f"/admin/pledges/{SLUG}/partners/1",
    f"/admin/pledges/{SLUG}/edit",
    "/admin/pledges/new",
    f"/admin/pledges/{SLUG}/organisations",
    f"/admin/pledges/{SLUG}/organisations?status=approved",
    f"/admin/pledges/{SLUG}/abuse",
    f"/admin/pledges/{SLUG}/abuse?hours=168&threshold=2",
    f"/admin/pledges/{SLUG}/export",
    "/admin/people",
    "/admin/audit",
    "/admin/users",
    "/admin/account",
]


def fill(settings: Settings, clock: FakeClock) -> None:
    """Signatures from two partners and direct, over two days, with occupations and sources."""
    pledge = pledge_row(settings)
    river = make_partner(settings).partner
    hill = make_partner(settings, name="Hill Union", origins=("https://hill.example",)).partner
    now = clock.now
    write(
        settings,
        [
            signature(
                pledge.id,
                f"r{i}@example.org",
                now - i * 900,
                river.id,
                occupation=["Nurse", "nurse ", "Teacher"][i % 3],
                opt_in_partner=i % 2 == 0,
                attribution={"source": "newsletter" if i % 2 else "social"},
                organisation="Hill School" if i == 1 else "",
                client_mark="c1" if i < 12 else "",
            )
            for i in range(20)
        ]
        + [
            signature(pledge.id, f"h{i}@example.org", now - 86400 - i * 60, hill.id, occupation="Doctor")
            for i in range(5)
        ]
        + [signature(pledge.id, f"d{i}@example.org", now - i * 30, None, opt_in_updates=True) for i in range(3)],
    )


@pytest.mark.parametrize("with_data", [True, False])
def test_every_page_renders(staff_client, settings: Settings, clock: FakeClock, with_data: bool) -> None:
    make_pledge(settings)
    if with_data:
        fill(settings, clock)
    else:
        make_partner(settings)
    staff = staff_client("owner")
    for url in PAGES:
        answer = staff.get(url)
        assert answer.status_code == 200, (url, answer.text[:500])
        assert answer.headers["cache-control"] == "no-store"
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert not re.search(r'<[^>]*\sstyle="', answer.text), url  # the policy allows no inline styles
    assert staff.get("/admin/static/staff.css").status_code == 200
    assert staff.get("/admin/static/staff.js").headers["content-type"].startswith("text/javascript")
    assert staff.get("/admin/static/../secret.key").status_code == 404


# The dashboard's numbers ------------------------------------------------------------------------


def _cells(html: str, marker: str) -> dict[str, str]:
    return dict(re.findall(rf'data-{marker}="([^"]+)">([^<]+)<', html))


def test_the_dashboard_numbers_equal_widget_server_stats(staff_client, settings: Settings, clock: FakeClock) -> None:
    make_pledge(settings)
    fill(settings, clock)
    page = staff_client("viewer").get(f"/admin/pledges/{SLUG}").text
    counted = _cells(page, "count")
    figures = _cells(page, "figure")
    expected = stats(settings)
    assert int(figures["total"].replace(",", "")) == expected["total"] == 28
    assert int(counted["direct"]) == expected["direct"] == 3
    for partner in expected["partners"]:
        pid = partner_named(settings, partner["name"]).id
        assert int(counted[str(pid)]) == partner["count"]
    # Last hour: r0..r3 (15 minutes apart) and all three direct; the rate over 10 minutes: r0 and d0–d2.
    assert figures["last-hour"] == "7"
    assert figures["rate"].startswith("0.4")
    assert figures["last-24h"] == "23"


def test_the_chart_data_equals_the_kept_counts(staff_client, settings: Settings, clock: FakeClock) -> None:
    make_pledge(settings)
    fill(settings, clock)
    page = staff_client("viewer").get(f"/admin/pledges/{SLUG}").text
    table = page.split('data-chart-table="days"', 1)[1].split("</table>", 1)[0]
    totals = {
        day: int(total.replace(",", ""))
        for day, total in re.findall(
            r'<th scope="row">(\d{4}-\d\d-\d\d)</th>.*?<td class="num">([\d,]+)</td></tr>', table, re.S
        )
    }
    by_day: dict[str, int] = {}
    for entry in stats(settings)["days"]:
        by_day[entry["day"]] = entry["total"]
    assert {day: n for day, n in totals.items() if n} == by_day
    hours = page.split('data-chart-table="hours"', 1)[1].split("</table>", 1)[0]
    assert hours.count('<tr><th scope="row">') == 48
    kept = rows(settings, "SELECT SUM(count) AS n FROM signature_hours")[0]["n"]
    hour_totals = [int(n.replace(",", "")) for n in re.findall(r'<td class="num">([\d,]+)</td></tr>', hours)]
    assert sum(hour_totals) == kept == 28
    assert "<svg" in page and 'role="img"' in page


def test_the_occupation_breakdown_is_normalised_and_per_partner(
    staff_client, settings: Settings, clock: FakeClock
) -> None:
    make_pledge(settings)
    fill(settings, clock)
    staff = staff_client("viewer")

    def occupations(url: str) -> list[tuple[str, str]]:
        table = staff.get(url).text.split("data-occupations", 1)[1].split("</table>", 1)[0]
        return re.findall(r'<th scope="row">([^<]+)</th><td class="num">([\d,]+)</td>', table)

    assert occupations(f"/admin/pledges/{SLUG}") == [
        ("nurse", "14"),
        ("teacher", "6"),
        ("doctor", "5"),
        ("Not given", "3"),
    ]
    hill = partner_named(settings, "Hill Union").id
    assert occupations(f"/admin/pledges/{SLUG}?partner={hill}") == [("doctor", "5"), ("Not given", "0")]


def test_the_occupation_breakdown_keeps_the_top_ten_and_adds_up_the_rest(
    staff_client, settings: Settings, clock: FakeClock
) -> None:
    pledge = make_pledge(settings)
    write(settings, [signature(pledge.id, f"o{i}@x.org", clock.now, occupation=f"job {i:02d}") for i in range(13)])
    page = staff_client("viewer").get(f"/admin/pledges/{SLUG}").text
    table = page.split("data-occupations", 1)[1].split("</table>", 1)[0]
    assert table.count("job ") == 10
    assert '<th scope="row">Other occupations</th><td class="num">3</td>' in table


def test_sources_are_shown_per_partner(staff_client, settings: Settings, clock: FakeClock) -> None:
    make_pledge(settings)
    fill(settings, clock)
    page = staff_client("viewer").get(f"/admin/pledges/{SLUG}").text
    table = page.split("data-sources", 1)[1].split("</table>", 1)[0]
    assert re.search(r"Riverside</th><td>newsletter</td>.*?<td class=\"num\">10</td>", table, re.S)
    assert re.search(r"Riverside</th><td>social</td>.*?<td class=\"num\">10</td>", table, re.S)


# Partners -------------------------------------------------------------------------------------


def test_creating_a_partner_shows_its_snippets_and_is_audited(staff_client, settings: Settings) -> None:
    make_pledge(settings)
    staff = staff_client("campaigner")
    answer = staff.post(
        f"/admin/pledges/{SLUG}/partners", {"name": "Riverside", "origins": "https://riverside.example"}
    )
    assert answer.status_code == 303
    page = staff.get(answer.headers["location"]).text
    assert "data-pledge=&#34;data-firewall&#34;" in page or "data-pledge=&quot;data-firewall&quot;" in page
    assert "/partner-report/" in page
    assert (staff.email, "partner created", SLUG, "Riverside") in audit_actions(settings)


def test_revoking_asks_first_and_says_what_will_happen(staff_client, make_client, settings: Settings) -> None:
    make_pledge(settings)
    creds = make_partner(settings)
    staff = staff_client("campaigner")
    asked = staff.post(f"/admin/pledges/{SLUG}/partners/1/revoke")
    assert asked.status_code == 200
    assert "The snippet on riverside.example stops working at once" in asked.text
    assert not partner_row(settings).revoked
    done = staff.post(f"/admin/pledges/{SLUG}/partners/1/revoke", {"confirmed": "yes"})
    assert done.status_code == 200 and partner_row(settings).revoked
    widget = make_client(settings).get(f"/embed/{SLUG}", params={"token": creds.token})
    assert widget.status_code == 403
    back = staff.post(f"/admin/pledges/{SLUG}/partners/1/reinstate", {"confirmed": "yes"})
    assert back.status_code == 200
    assert make_client(settings).get(f"/embed/{SLUG}", params={"token": creds.token}).status_code == 200
    actions = [a for _, a, _, _ in audit_actions(settings)]
    assert "partner revoked" in actions and "partner reinstated" in actions


def test_rotating_and_editing_origins_issue_a_new_token(staff_client, settings: Settings) -> None:
    make_pledge(settings)
    make_partner(settings)
    staff = staff_client("campaigner")
    staff.post(f"/admin/pledges/{SLUG}/partners/1/rotate", {"confirmed": "yes"})
    assert partner_row(settings).token_version == 2
    asked = staff.post(f"/admin/pledges/{SLUG}/partners/1/origins", {"origins": "https://new.example"})
    assert "The snippet on riverside.example stops working" in asked.text
    staff.post(f"/admin/pledges/{SLUG}/partners/1/origins", {"origins": "https://new.example", "confirmed": "yes"})
    partner = partner_row(settings)
    assert partner.origins == ("https://new.example",) and partner.token_version == 3
    actions = [a for _, a, _, _ in audit_actions(settings)]
    assert "token rotated" in actions and "origins edited" in actions


# The partner's own report ------------------------------------------------------------------------


def _report_link(staff: StaffClient, partner_id: int) -> str:
    page = staff.get(f"/admin/pledges/{SLUG}/partners/{partner_id}").text
    match = re.search(r'id="report_link" readonly value="http://testserver(/partner-report/[^"]+)"', page)
    assert match
    return match.group(1)


def test_a_partners_report_shows_only_its_own_numbers(
    staff_client, make_client, settings: Settings, clock: FakeClock
) -> None:
    make_pledge(settings)
    fill(settings, clock)
    link = _report_link(staff_client("campaigner"), 1)
    public = make_client(settings)
    page = public.get(link)
    assert page.status_code == 200
    assert _cells(page.text, "figure")["partner-total"] == "20"
    assert "Hill Union" not in page.text and "@example.org" not in page.text
    assert "newsletter" in page.text
    assert page.headers["x-robots-tag"] == "noindex, nofollow"
    assert "set-cookie" not in page.headers


def test_a_partners_report_link_cannot_be_altered_to_show_another(
    staff_client, make_client, settings: Settings, clock: FakeClock
) -> None:
    import base64
    import json

    make_pledge(settings)
    fill(settings, clock)
    link = _report_link(staff_client("campaigner"), 1)
    payload, signature_part = link.rsplit("/", 1)[1].split(".", 1)
    data = json.loads(base64.urlsafe_b64decode(payload + "=="))
    data["p"] = 2
    forged = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()
    public = make_client(settings)
    answer = public.get(f"/partner-report/{forged}.{signature_part}")
    assert answer.status_code == 404
    assert "Hill Union" not in answer.text and "Riverside" not in answer.text


def test_rotating_the_token_ends_the_old_report_link(staff_client, make_client, settings: Settings) -> None:
    make_pledge(settings)
    make_partner(settings)
    staff = staff_client("campaigner")
    old = _report_link(staff, 1)
    staff.post(f"/admin/pledges/{SLUG}/partners/1/rotate", {"confirmed": "yes"})
    public = make_client(settings)
    assert public.get(old).status_code == 404
    assert public.get(_report_link(staff, 1)).status_code == 200
    staff.post(f"/admin/pledges/{SLUG}/partners/1/revoke", {"confirmed": "yes"})
    assert public.get(_report_link(staff, 1)).status_code == 404


# Pledges --------------------------------------------------------------------------------------


def test_creating_and_editing_a_pledge_sanitises_and_audits(staff_client, settings: Settings) -> None:
    staff = staff_client("campaigner")
    made = staff.post(
        "/admin/pledges",
        {
            "slug": "new-pledge",
            "title": "A new pledge",
            "statement": "<p>We ask.</p><script>x()</script>",
            "goal": "1,000",
            "field_occupation": "yes",
            "status": "open",
        },
    )
    assert made.status_code == 303 and made.headers["location"] == "/admin/pledges/new-pledge"
    pledge = pledge_row(settings, "new-pledge")
    assert "<script>" not in pledge.statement_html and pledge.goal == 1000
    assert pledge.optional_fields == ("occupation",) and not pledge.closed
    saved = staff.post(
        "/admin/pledges/new-pledge/edit",
        {
            "title": "A new pledge",
            "statement": "<p>We ask.</p>",
            "goal": "2000",
            "status": "closed",
            "field_organisation": "yes",
            "contact": "0800 000",
        },
    )
    assert saved.status_code == 200 and "Saved" in saved.text
    pledge = pledge_row(settings, "new-pledge")
    assert (pledge.goal, pledge.closed, pledge.optional_fields, pledge.contact) == (
        2000,
        True,
        ("organisation",),
        "0800 000",
    )
    actions = [(a, p) for _, a, p, _ in audit_actions(settings)]
    assert ("pledge created", "new-pledge") in actions
    assert ("pledge edited", "new-pledge") in actions and ("pledge closed", "new-pledge") in actions
    bad = staff.post("/admin/pledges/new-pledge/edit", {"title": "", "statement": "<p>x</p>", "status": "open"})
    assert bad.status_code == 400 and "needs a title" in bad.text


def test_a_closed_pledge_says_so_and_refuses_signatures(
    staff_client, make_client, settings: Settings, clock: FakeClock
) -> None:
    make_pledge(settings)
    client = make_client(settings)
    signer = Signer(client, clock)
    form_token = signer.form()
    staff_client("campaigner").post(
        f"/admin/pledges/{SLUG}/edit", {"title": "Keep our data safe", "statement": "<p>S</p>", "status": "closed"}
    )
    page = client.get(f"/embed/{SLUG}")
    assert "This pledge has closed" in page.text and "data-sign-form" not in page.text
    clock.advance(5)
    refused = signer.post(form_token)
    assert refused.status_code == 403 and "has closed" in refused.text
    assert stats(settings)["total"] == 0


def test_optional_questions_can_be_left_out_of_the_form(staff_client, make_client, settings: Settings) -> None:
    make_pledge(settings)
    staff_client("campaigner").post(
        f"/admin/pledges/{SLUG}/edit", {"title": "Keep our data safe", "statement": "<p>S</p>", "status": "open"}
    )
    page = make_client(settings).get(f"/embed/{SLUG}").text
    assert 'name="occupation"' not in page and 'name="organisation"' not in page and 'name="email"' in page


# Organisations, exports, people, abuse ------------------------------------------------------------


def test_organisations_are_approved_or_hidden_and_counted(staff_client, settings: Settings, clock: FakeClock) -> None:
    make_pledge(settings)
    fill(settings, clock)
    staff = staff_client("campaigner")
    assert _cells(staff.get(f"/admin/pledges/{SLUG}").text.replace("<a href", "<x"), "figure")  # the page renders
    assert 'data-figure="pending">1<' in staff.get(f"/admin/pledges/{SLUG}").text
    staff.post(f"/admin/pledges/{SLUG}/organisations", {"name": "Hill School", "action": "approve"})
    assert on_db(settings, lambda store: store.approved_organisation_names(1)) == ["Hill School"]
    assert 'data-figure="pending">0<' in staff.get(f"/admin/pledges/{SLUG}").text
    staff.post(f"/admin/pledges/{SLUG}/organisations", {"name": "Hill School", "action": "hide"})
    assert on_db(settings, lambda store: store.approved_organisation_names(1)) == []
    actions = [a for _, a, _, _ in audit_actions(settings)]
    assert "organisation approved" in actions and "organisation hidden" in actions


def test_exports_stream_formula_safe_csv_of_what_was_asked(staff_client, settings: Settings, clock: FakeClock) -> None:
    pledge = make_pledge(settings)
    partner = make_partner(settings).partner
    write(
        settings,
        [
            signature(pledge.id, "a@x.org", clock.now, partner.id, opt_in_partner=True, occupation="=HYPERLINK(1)"),
            signature(pledge.id, "b@x.org", clock.now, partner.id),
            signature(pledge.id, "c@x.org", clock.now),
        ],
    )
    staff = staff_client("campaigner")
    with staff.client.stream("GET", f"/admin/pledges/{SLUG}/export.csv") as answer:
        assert answer.headers["content-disposition"] == 'attachment; filename="data-firewall-all.csv"'
        chunks = list(answer.iter_raw())
    assert len(chunks) > 1  # sent as it is read, not built whole first
    every = b"".join(chunks).decode()
    assert every.count("\r\n") == 4 and "'=HYPERLINK(1)" in every
    one = staff.get(f"/admin/pledges/{SLUG}/export.csv?partner={partner.id}").text
    assert "a@x.org" in one and "b@x.org" in one and "c@x.org" not in one
    opted = staff.get(f"/admin/pledges/{SLUG}/export.csv?partner={partner.id}&opted_in=1").text
    assert "a@x.org" in opted and "b@x.org" not in opted
    direct = staff.get(f"/admin/pledges/{SLUG}/export.csv?partner=direct").text
    assert "c@x.org" in direct and "a@x.org" not in direct
    details = [r["detail"] for r in rows(settings, "SELECT * FROM audit_log WHERE action = 'export downloaded'")]
    assert details == [
        "all signatures (CSV)",
        "Riverside: all its signatures (CSV)",
        "Riverside: only those who agreed to hear from it (CSV)",
        "direct signatures (CSV)",
    ]


def test_find_export_and_erase_a_person(staff_client, settings: Settings, clock: FakeClock) -> None:
    make_pledge(settings)
    fill(settings, clock)
    staff = staff_client("owner")
    found = staff.post("/admin/people/find", {"email": " R1@Example.org "})
    assert found.status_code == 200 and "1 signature of r1@example.org" in found.text
    exported = staff.post("/admin/people/export", {"email": "r1@example.org"})
    assert exported.json()["signatures"][0]["organisation"] == "Hill School"
    asked = staff.post("/admin/people/erase", {"email": "r1@example.org"})
    assert "This deletes 1 signature of r1@example.org" in asked.text
    done = staff.post("/admin/people/erase", {"email": "r1@example.org", "confirmed": "yes"})
    assert "Erased 1 signature" in done.text
    assert stats(settings)["total"] == 27 and integrity(settings) == []
    logged = audit_actions(settings)
    assert (staff.email, "person found", "", "r…@example.org") in logged
    assert (staff.email, "person exported", "", "r…@example.org") in logged
    assert (staff.email, "person erased", "", "r…@example.org") in logged
    assert not any("r1@example.org" in " ".join(entry) for entry in logged)


def test_a_burst_is_previewed_then_invalidated_with_counts_corrected(
    staff_client, settings: Settings, clock: FakeClock
) -> None:
    make_pledge(settings)
    fill(settings, clock)
    staff = staff_client("campaigner")
    panel = staff.get(f"/admin/pledges/{SLUG}/abuse?threshold=3").text
    match = re.search(
        r'name="hour" value="([^"]+)"><input type="hidden" name="kind" value="client">'
        r'<input type="hidden" name="value" value="c1"',
        panel,
    )
    assert match, panel
    hour = match.group(1)
    expected = rows(
        settings,
        f"SELECT COUNT(*) AS n FROM signatures WHERE client_mark = 'c1' AND created_at >= '{hour}:00:00Z'"
        f" AND created_at <= '{hour}:59:59Z'",
    )[0]["n"]
    asked = staff.post(f"/admin/pledges/{SLUG}/abuse/invalidate", {"hour": hour, "kind": "client", "value": "c1"})
    assert f"Remove {expected} signatures?" in asked.text
    before = stats(settings)["total"]
    done = staff.post(
        f"/admin/pledges/{SLUG}/abuse/invalidate", {"hour": hour, "kind": "client", "value": "c1", "confirmed": "yes"}
    )
    assert done.status_code == 200 and f"Removed {expected} signatures" in done.text
    assert stats(settings)["total"] == before - expected
    assert integrity(settings) == []
    assert any(a == "burst invalidated" for _, a, _, _ in audit_actions(settings))
    bad = staff.post(f"/admin/pledges/{SLUG}/abuse/invalidate", {"hour": "yesterday", "kind": "client", "value": "c1"})
    assert bad.status_code == 400


def test_signatures_through_the_widget_carry_a_client_mark_not_an_address(
    make_client, settings: Settings, clock: FakeClock
) -> None:
    make_pledge(settings)
    client = make_client(settings, host="203.0.113.7")
    Signer(client, clock).sign(email="one@example.org")
    Signer(client, clock).sign(email="two@example.org")
    marks = [r["client_mark"] for r in rows(settings)]
    assert len(set(marks)) == 1 and len(marks[0]) == 32
    assert "203.0.113.7" not in marks[0]
    if not isinstance(settings.database, str):  # the SQLite file itself holds no address either
        with open(settings.database, "rb") as raw:
            assert b"203.0.113.7" not in raw.read()


# Accounts and the audit log ---------------------------------------------------------------------


def test_owners_add_change_and_remove_accounts(staff_client, make_client, settings: Settings) -> None:
    staff = staff_client("owner")
    added = staff.post(
        "/admin/users", {"email": "Bo@Campaign.example", "role": "viewer", "password": "a long password"}
    )
    assert "Added bo@campaign.example as viewer" in added.text
    assert log_in(make_client(settings), "bo@campaign.example", "a long password").status_code == 303
    staff.post("/admin/users/role", {"email": "bo@campaign.example", "role": "campaigner"})
    changed = on_db(settings, lambda store: store.staff_user_by_email("bo@campaign.example"))
    assert changed is not None and changed.role == "campaigner"
    staff.post("/admin/users/remove", {"email": "bo@campaign.example", "confirmed": "yes"})
    assert on_db(settings, lambda store: store.staff_user_by_email("bo@campaign.example")) is None
    last = staff.post("/admin/users/remove", {"email": staff.email, "confirmed": "yes"})
    assert last.status_code == 400 and "last owner" in last.text
    actions = [a for _, a, _, _ in audit_actions(settings)]
    assert {"user added", "role changed", "user removed"} <= set(actions)


def test_the_audit_log_page_filters_by_who_and_what(staff_client, settings: Settings) -> None:
    make_pledge(settings)
    staff = staff_client("owner")
    staff.post(f"/admin/pledges/{SLUG}/partners", {"name": "Riverside", "origins": "https://riverside.example"})
    page = staff.get("/admin/audit", params={"action": "partner created"}).text
    table = page.split("data-audit", 1)[1]
    assert "partner created" in table and ">login<" not in table
    page = staff.get("/admin/audit", params={"actor": "nobody@else"}).text
    assert "No entries." in page


def test_the_public_widget_never_sees_a_staff_cookie(staff_client, settings: Settings) -> None:
    make_pledge(settings)
    staff = staff_client("owner")
    jar = staff.client.cookies
    assert all(cookie.path == "/admin" for cookie in jar.jar)
    for url in (f"/embed/{SLUG}", f"/api/pledges/{SLUG}/count", "/widget.js", f"/pledge/{SLUG}"):
        request = staff.client.build_request("GET", url)
        assert "cookie" not in request.headers, url
        answer = staff.client.get(url)
        assert "set-cookie" not in answer.headers, url
