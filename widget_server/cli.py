"""The `widget-server` command: serve, manage pledges and partners, read numbers, export, demo.

Every failure a person can cause ends in one line on stderr and a non-zero exit, never a
traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from widget_server import messages
from widget_server.core.signform import normalise_email
from widget_server.errors import WidgetError
from widget_server.services import moving, organisations, partners, people, pledges, reports
from widget_server.services.organisations import ORGANISATION_STATUSES
from widget_server.services.partners import PartnerCredentials
from widget_server.settings import Settings, database_path, help_table, port_number
from widget_server.storage.engines import open_store, store_for
from widget_server.storage.store import Store

T = TypeVar("T")

log = logging.getLogger("widget_server")


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    return Settings.from_env(db_path=getattr(args, "db", None), **overrides)


def _on_db(args: argparse.Namespace, action: Callable[[Store, Settings], Awaitable[T]]) -> T:
    """Open the store the command names, run one staff action on it, and close it."""
    settings = _settings(args)

    async def go() -> T:
        async with open_store(settings.database) as store:
            return await action(store, settings)

    return asyncio.run(go())


def cmd_serve(args: argparse.Namespace) -> None:
    from widget_server.server import serve

    settings = _settings(args, public_url=_local_url(args.host, args.port), workers=args.workers)
    if settings.workers > 1 and not isinstance(settings.database, str):
        raise WidgetError(messages.WORKERS_NEED_POSTGRES)
    _on_db(args, lambda store, _: store.ping())  # a bad database is one line here, not a traceback from uvicorn
    serve(settings, host=args.host, port=args.port, workers=settings.workers)


def _local_url(host: str, port: int) -> str | None:
    """Without WIDGET_PUBLIC_URL, snippets point at the address being served."""
    if os.environ.get("WIDGET_PUBLIC_URL"):
        return None
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    elif ":" in host:  # an IPv6 address goes in brackets in a URL
        host = f"[{host}]"
    return f"http://{host}:{port}"


def cmd_pledge_add(args: argparse.Namespace) -> None:
    try:
        statement = Path(args.statement_file).read_text(encoding="utf-8")
    except OSError as exc:
        raise WidgetError(f"Cannot read the statement file {args.statement_file}: {exc.strerror}.") from None
    except UnicodeDecodeError:
        raise WidgetError(f"The statement file {args.statement_file} is not UTF-8 text.") from None

    pledge = _on_db(
        args,
        lambda store, settings: pledges.add_pledge(
            store,
            slug=args.slug,
            title=args.title,
            statement_html=statement,
            goal=args.goal,
            privacy_url=args.privacy_url,
            contact=args.contact,
            confirm_email=args.confirm_email == "on",
            settings=settings,
        ),
    )
    print(f"Created pledge {pledge.slug!r}: {pledge.title}")


def _print_credentials(creds: PartnerCredentials, as_json: bool, verb: str) -> None:
    if as_json:
        print(json.dumps(creds.as_json(), indent=2))
        return
    partner = creds.partner
    print(f"{verb} partner {partner.name!r} (id {partner.id}) for {', '.join(partner.origins)}.")
    print("\nPaste this where the form should appear:\n")
    print(creds.snippets["snippet"])
    print("\nCounter only (for a home page):\n")
    print(creds.snippets["counter_snippet"])
    print("\nIf the website strips <script> tags, paste this instead:\n")
    print(creds.snippets["iframe_snippet"])


def cmd_partner_add(args: argparse.Namespace) -> None:
    creds = _on_db(
        args, lambda store, settings: partners.add_partner(store, settings, args.slug, args.name, args.origin)
    )
    _print_credentials(creds, args.json, "Added")


def cmd_partner_rotate(args: argparse.Namespace) -> None:
    creds = _on_db(args, lambda store, settings: partners.rotate_partner(store, settings, args.slug, args.name))
    if not args.json:
        print("The old snippet stops working within seconds; send the partner the new one.")
    _print_credentials(creds, args.json, "Rotated")


def cmd_partner_revoke(args: argparse.Namespace) -> None:
    partner = _on_db(args, lambda store, _: partners.revoke_partner(store, args.slug, args.name))
    print(f"Revoked {partner.name!r}: its widget stops accepting signatures within seconds.")


def cmd_stats(args: argparse.Namespace) -> None:
    stats = _on_db(args, lambda store, _: reports.stats(store, args.slug))
    if args.json:
        print(json.dumps(stats, indent=2))
        return
    print(f"{stats['pledge']}: {stats['total']:,} signatures ({stats['direct']:,} direct)")
    # With confirmation asked for: those still waiting for their signer, and the share confirmed
    # (a partner whose signers rarely confirm may be sending invented addresses).
    asked = stats["confirmation_rate"] is not None
    if asked:
        print(f"  waiting for confirmation: {stats['pending']:,} ({_rate(stats['confirmation_rate'])} confirmed)")
    # reports.stats builds "partners" as this list; its declared type is the JSON-shaped dict.
    for partner in cast(list[dict[str, Any]], stats["partners"]):
        flag = " (revoked)" if partner["revoked"] else ""
        waiting = (
            f"  ({partner['pending']:,} waiting, {_rate(partner['confirmation_rate'])} confirmed)" if asked else ""
        )
        print(f"  {partner['count']:>9,}  {partner['name']}{flag}{waiting}")


def _rate(rate: object) -> str:
    return "—" if rate is None else f"{float(cast(float, rate)):.0%}"


def cmd_export(args: argparse.Namespace) -> None:
    _on_db(args, lambda store, _: reports.export_csv(store, args.slug, sys.stdout))


def cmd_backup(args: argparse.Namespace) -> None:
    store = store_for(_settings(args).database)
    asyncio.run(reports.backup(store, Path(args.dest)))
    print(f"Backed up {store.location} to {args.dest}")


def cmd_orgs_list(args: argparse.Namespace) -> None:
    found = _on_db(args, lambda store, _: organisations.organisations(store, args.slug, args.status))
    if args.json:
        print(json.dumps(found, indent=2, ensure_ascii=False))
        return
    for org in found:
        print(f"  {org['status']:<9} {org['signatures']:>6,}  {org['name']}")
    if not found:
        print("No organisations" + (f" are {args.status}." if args.status else " have signed yet."))


def _review(status: str) -> Callable[[argparse.Namespace], None]:
    def cmd(args: argparse.Namespace) -> None:
        _on_db(args, lambda store, _: organisations.review_organisation(store, args.slug, args.name, status))
        where = "shown in the public list" if status == "approved" else "kept out of the public list"
        print(f"{args.name!r} is now {where}.")

    return cmd


def cmd_person_export(args: argparse.Namespace) -> None:
    found = _on_db(args, lambda store, _: people.person_data(store, args.email))
    print(json.dumps({"email": normalise_email(args.email), "signatures": found}, indent=2, ensure_ascii=False))


def cmd_person_erase(args: argparse.Namespace) -> None:
    erased = _on_db(args, lambda store, _: people.erase_person(store, args.email))
    print(messages.erased(erased.signatures, erased.scrubbed))


def cmd_migrate_to(args: argparse.Namespace) -> None:
    settings = _settings(args)

    async def go() -> moving.Moved:
        async with open_store(settings.database) as source, open_store(args.url) as target:
            return await moving.copy_everything(source, target)

    moved = asyncio.run(go())
    target = store_for(args.url).location
    print(
        f"Copied {moved.rows['signatures']:,} signatures, {moved.rows['partners']:,} partners and"
        f" {moved.rows['pledges']:,} pledges to {target}; the counts equal the rows there."
    )
    print("Set WIDGET_DB to that URL to serve from it.")


# The staff area's commands: accounts, pledge settings, partners' report links. Each is audited
# as the operating-system user (services/audit.py), like the commands that main() audits.


def _audited(args: argparse.Namespace, action: str, *, pledge: str = "", subject: str = "", detail: str = "") -> None:
    from widget_server.services import audit

    actor = audit.cli_actor()
    _on_db(args, lambda store, _: audit.record(store, actor, action, pledge=pledge, subject=subject, detail=detail))


def _new_password() -> str:
    """WIDGET_PASSWORD for scripts, else typed twice at a prompt that does not echo."""
    import getpass

    from widget_server import messages

    if os.environ.get("WIDGET_PASSWORD"):
        return os.environ["WIDGET_PASSWORD"]
    if not sys.stdin.isatty():
        raise WidgetError(messages.STAFF_NO_PASSWORD)
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Password again: "):
        raise WidgetError(messages.STAFF_PASSWORD_MISMATCH)
    return first


def cmd_user_add(args: argparse.Namespace) -> None:
    from widget_server.services import accounts

    accounts.checked_role(args.role)
    password = _new_password()
    user = _on_db(args, lambda store, _: accounts.add_user(store, args.email, args.role, password))
    _audited(args, "user added", subject=user.email, detail=user.role)
    print(f"Added {user.email} as {user.role}; they sign in at /admin/login.")


def cmd_user_remove(args: argparse.Namespace) -> None:
    from widget_server.services import accounts

    user = _on_db(args, lambda store, _: accounts.remove_user(store, args.email))
    _audited(args, "user removed", subject=user.email)
    print(f"Removed {user.email}; their sessions have ended.")


def cmd_user_list(args: argparse.Namespace) -> None:
    users = _on_db(args, lambda store, _: store.staff_users())
    for user in users:
        print(f"  {user.role:<10} {user.email}")
    if not users:
        print("No staff accounts yet: add one with `widget-server user add EMAIL --role owner`.")


def cmd_user_password(args: argparse.Namespace) -> None:
    from widget_server.services import accounts

    _on_db(args, lambda store, _: accounts.find_user(store, args.email))
    password = _new_password()
    user = _on_db(args, lambda store, _: accounts.change_password(store, args.email, password))
    _audited(args, "password changed", subject=user.email)
    print(f"Changed the password of {user.email}; every session they had has ended.")


def cmd_pledge_edit(args: argparse.Namespace) -> None:
    from widget_server import messages
    from widget_server.services.pledge_settings import edit_pledge

    changes: dict[str, Any] = {}
    if args.title is not None:
        changes["title"] = args.title
    if args.statement_file is not None:
        try:
            changes["statement_html"] = Path(args.statement_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise WidgetError(f"Cannot read the statement file {args.statement_file}: {exc.strerror}.") from None
    for name in ("goal", "privacy_url", "contact"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name) or None
    if args.fields is not None:
        changes["optional_fields"] = args.fields.split(",")
    if args.open:
        changes["closed"] = False
    if args.confirm_email is not None:
        changes["confirm_email"] = args.confirm_email == "on"
    if not changes:
        raise WidgetError(messages.STAFF_NOTHING_TO_EDIT)
    pledge, changed = _on_db(args, lambda store, settings: edit_pledge(store, args.slug, settings=settings, **changes))
    edits = [c for c in changed if c not in ("closed", "opened")]
    if edits:
        _audited(args, "pledge edited", pledge=pledge.slug, detail=", ".join(edits))
    if "opened" in changed:
        _audited(args, "pledge opened", pledge=pledge.slug)
    print(f"Saved {pledge.slug!r}: " + (", ".join(changed) + " changed." if changed else "nothing had changed."))


def cmd_pledge_close(args: argparse.Namespace) -> None:
    from widget_server.services.pledge_settings import edit_pledge

    pledge, changed = _on_db(args, lambda store, _: edit_pledge(store, args.slug, closed=True))
    if changed:
        _audited(args, "pledge closed", pledge=pledge.slug)
    print(f"{pledge.slug!r} is closed: its widget says so and refuses new signatures within seconds.")


def cmd_partner_link(args: argparse.Namespace) -> None:
    from widget_server.services.partner_links import partner_link

    pledge, partner, link = _on_db(args, lambda store, settings: partner_link(store, settings, args.slug, args.name))
    _audited(args, "partner link shown", pledge=pledge.slug, subject=partner.name)
    print(link)


def cmd_partner_webhook(args: argparse.Namespace) -> None:
    from widget_server.services import webhooks

    if args.off:
        pledge, partner, had = _on_db(args, lambda store, _: webhooks.remove_webhook(store, args.slug, args.name))
        if not had:
            print(messages.WEBHOOK_WAS_OFF.format(name=partner.name))
            return
        _audited(args, "webhook removed", pledge=pledge.slug, subject=partner.name)
        print(messages.WEBHOOK_OFF.format(name=partner.name))
        return
    done = _on_db(
        args, lambda store, settings: webhooks.set_webhook(store, settings, args.slug, args.name, args.url or "")
    )
    # The secret is printed, never recorded: the audit log keeps only where deliveries go.
    _audited(
        args, "webhook set", pledge=done.pledge.slug, subject=done.partner.name, detail=webhooks.audit_detail(done.url)
    )
    print(messages.WEBHOOK_SET.format(name=done.partner.name, url=done.url))
    print(messages.WEBHOOK_SECRET_ONCE.format(name=done.partner.name))
    print()
    print(done.secret)


def cmd_outbox_list(args: argparse.Namespace) -> None:
    from widget_server.services import outbox

    found = _on_db(args, lambda store, _: outbox.messages_in(store, dead_only=args.dead, limit=args.limit))
    if args.json:
        print(json.dumps([_outbox_json(queued) for queued in found], indent=2, ensure_ascii=False))
        return
    if not found:
        print(messages.OUTBOX_NO_DEAD if args.dead else messages.OUTBOX_EMPTY)
        return
    print(f"  {'id':>8}  {'kind':<18}  {'partner':<20}  {'attempts':>8}  {'next attempt':<20}  last error")
    for queued in found:
        m = queued.message
        due = "dead" if m.dead else m.next_attempt_at
        partner = queued.partner or "–"
        print(f"  {m.id:>8}  {queued.kind:<18}  {partner:<20}  {m.attempts:>8}  {due:<20}  {m.last_error or '–'}")


def _outbox_json(queued: Any) -> dict[str, object]:
    m = queued.message
    return {
        "id": m.id,
        "kind": m.kind,
        "partner": queued.partner or None,
        "pledge": queued.pledge or None,
        "created_at": m.created_at,
        "attempts": m.attempts,
        "next_attempt_at": None if m.dead else m.next_attempt_at,
        "dead": m.dead,
        "last_error": m.last_error,
    }


def cmd_outbox_retry(args: argparse.Namespace) -> None:
    from widget_server.services import audit, outbox

    actor = audit.cli_actor()
    count = _on_db(args, lambda store, _: outbox.retry(store, actor, None if args.all_dead else args.id))
    print(messages.outbox_retried(count))


def cmd_outbox_discard(args: argparse.Namespace) -> None:
    from widget_server.services import audit, outbox

    actor = audit.cli_actor()
    _on_db(args, lambda store, _: outbox.discard(store, actor, args.id))
    print(messages.OUTBOX_DISCARDED.format(id=args.id))


def cmd_demo(args: argparse.Namespace) -> None:
    from widget_server.demo import run_demo

    settings = _settings(args, public_url=_local_url(args.host, args.port))
    run_demo(settings, host=args.host, port=args.port, partner_port=args.partner_port)


_CONFIRM_HELP = (
    "count a signature only once its signer confirms it by email (needs WIDGET_SMTP_URL and WIDGET_MAIL_FROM)"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="widget-server",
        description="Embeddable pledge widgets: serve them and manage pledges and partners.",
        epilog="Settings from the environment:\n" + "\n".join(f"  {env:<28} {text}" for env, _, text in help_table()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        parent: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        handler: Callable[[argparse.Namespace], None],
        help: str,
    ) -> argparse.ArgumentParser:
        sub = parent.add_parser(name, help=help, description=help)
        sub.add_argument(
            "--db",
            metavar="URL",
            type=database_path,
            help="a SQLite file, sqlite:///path or postgresql://… (default: $WIDGET_DB)",
        )
        sub.set_defaults(handler=handler)
        return sub

    serve = command(commands, "serve", cmd_serve, "Serve the widgets.")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=port_number, default=8000)
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="server processes sharing the port (default: $WIDGET_WORKERS or 1); more than one needs PostgreSQL",
    )
    move = command(
        commands,
        "migrate-to",
        cmd_migrate_to,
        "Copy everything into another, empty database (SQLite to PostgreSQL or back), then check it.",
    )
    move.add_argument("url", help="the target: postgresql://user:password@host:port/database, or a SQLite path")

    pledge = commands.add_parser("pledge", help="Create pledges.").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = command(pledge, "add", cmd_pledge_add, "Create a pledge.")
    add.add_argument("slug")
    add.add_argument("--title", required=True)
    add.add_argument("--statement-file", required=True, help="HTML or plain text; sanitised when saved")
    add.add_argument("--goal", type=int)
    add.add_argument("--privacy-url", help="your privacy policy (default: a built-in notice)")
    add.add_argument("--contact", help="how supporters change contact preferences, e.g. a phone number")
    add.add_argument(
        "--confirm-email",
        choices=("on", "off"),
        default="off",
        help=_CONFIRM_HELP,
    )
    edit = command(pledge, "edit", cmd_pledge_edit, "Change a pledge's texts, goal, questions, or reopen it.")
    edit.add_argument("slug")
    edit.add_argument("--title")
    edit.add_argument("--statement-file", help="HTML or plain text; sanitised when saved")
    edit.add_argument("--goal", type=int)
    edit.add_argument("--privacy-url", help="'' for the built-in notice")
    edit.add_argument("--contact")
    edit.add_argument("--fields", help="optional questions, comma-separated: occupation,organisation ('' for none)")
    edit.add_argument("--open", action="store_true", help="collect signatures again after `pledge close`")
    edit.add_argument(
        "--confirm-email",
        choices=("on", "off"),
        help=_CONFIRM_HELP,
    )
    command(pledge, "close", cmd_pledge_close, "Stop collecting signatures; the widget says so.").add_argument("slug")

    partner = commands.add_parser("partner", help="Onboard and manage partners.").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    padd = command(partner, "add", cmd_partner_add, "Add a partner and print its snippets.")
    padd.add_argument("slug")
    padd.add_argument("--name", required=True)
    padd.add_argument("--origin", action="append", default=[], help="the partner's site; repeatable")
    padd.add_argument("--json", action="store_true")
    rotate = command(partner, "rotate", cmd_partner_rotate, "Issue a new token; the old one stops working.")
    rotate.add_argument("slug")
    rotate.add_argument("name")
    rotate.add_argument("--json", action="store_true")
    revoke = command(partner, "revoke", cmd_partner_revoke, "Switch a partner's widget off.")
    revoke.add_argument("slug")
    revoke.add_argument("name")
    link = command(partner, "link", cmd_partner_link, "Print the partner's read-only report link.")
    link.add_argument("slug")
    link.add_argument("name")
    hook = command(
        partner,
        "webhook",
        cmd_partner_webhook,
        "Send the signatures that agree to hear from a partner to its webhook, signed; prints the secret once.",
    )
    hook.add_argument("slug")
    hook.add_argument("name")
    where = hook.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="the partner's https:// endpoint (a new secret is made each time)")
    where.add_argument("--off", action="store_true", help="stop sending to the partner's webhook")

    box = commands.add_parser("outbox", help="Emails and webhooks waiting to be sent.").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    blist = command(box, "list", cmd_outbox_list, "Queued messages, oldest first, with their last error.")
    blist.add_argument("--dead", action="store_true", help="only the dead ones (out of attempts)")
    blist.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    blist.add_argument("--json", action="store_true")
    bretry = command(box, "retry", cmd_outbox_retry, "Try a dead message again now, its attempts starting over.")
    which = bretry.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?", type=int, help="the message's id (outbox list)")
    which.add_argument("--all-dead", action="store_true", help="every dead message")
    command(box, "discard", cmd_outbox_discard, "Remove a queued or dead message without sending it.").add_argument(
        "id", type=int, help="the message's id (outbox list)"
    )

    user = commands.add_parser("user", help="Staff accounts for the /admin pages.").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    uadd = command(user, "add", cmd_user_add, "Add a staff account (password: prompt or $WIDGET_PASSWORD).")
    uadd.add_argument("email")
    uadd.add_argument("--role", default="viewer", choices=("owner", "campaigner", "viewer"))
    command(user, "remove", cmd_user_remove, "Remove a staff account.").add_argument("email")
    command(user, "list", cmd_user_list, "Every staff account and its role.")
    command(user, "password", cmd_user_password, "Set a new password; their sessions end.").add_argument("email")

    stats = command(commands, "stats", cmd_stats, "Totals and the per-partner split.")
    stats.add_argument("slug")
    stats.add_argument("--json", action="store_true")
    export = command(commands, "export", cmd_export, "Signatures as spreadsheet-safe CSV on stdout.")
    export.add_argument("slug")
    backup = command(commands, "backup", cmd_backup, "A consistent copy of the database, while serving.")
    backup.add_argument("dest")
    orgs = commands.add_parser("orgs", help="Moderate the public list of organisations.").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    olist = command(orgs, "list", cmd_orgs_list, "Organisations that signed, with their review status.")
    olist.add_argument("slug")
    olist.add_argument("--status", choices=ORGANISATION_STATUSES)
    olist.add_argument("--json", action="store_true")
    for verb, status, text in (
        ("approve", "approved", "Show an organisation in the public list."),
        ("hide", "hidden", "Keep an organisation out of the public list."),
    ):
        review = command(orgs, verb, _review(status), text)
        review.add_argument("slug")
        review.add_argument("name")

    person = commands.add_parser("person", help="Data-protection requests for one email address.").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    command(person, "export", cmd_person_export, "Everything kept about an email address, as JSON.").add_argument(
        "email"
    )
    command(person, "erase", cmd_person_erase, "Delete an email address's signatures everywhere.").add_argument("email")

    demo = command(commands, "demo", cmd_demo, "A demo pledge, partners and a partner's page.")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=port_number, default=8000)
    demo.add_argument("--partner-port", type=port_number, default=8001)
    return parser


def _audit_command(args: argparse.Namespace) -> None:
    """Record a command that changed something or handed data out (services/audit.py lists them)."""
    from widget_server.services import audit

    command, action = args.command, getattr(args, "action", None)
    if not audit.is_audited(command, action):
        return  # nothing to record, so no database to open (serve, backup, stats, …)
    _on_db(args, lambda store, _: audit.record_cli(store, command, action, vars(args)))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    try:
        args.handler(args)
        _audit_command(args)
    except WidgetError as exc:
        print(f"widget-server: {exc.message}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `widget-server export … | head`
        sys.stderr.close()
        return 0
    except OSError as exc:
        print(f"widget-server: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
