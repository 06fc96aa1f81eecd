"""Every sentence a supporter, a partner or campaign staff reads, in one place.

Kept apart from the code that decides when to say them, so the wording can be reviewed as a
whole and translations can hook in here later. Sentences with a `{placeholder}` are filled in
with `str.format` by the code that raises them.
"""

from __future__ import annotations

# The sign form: what a supporter is asked to correct.
NAME_MISSING = "Please enter your name."
EMAIL_MISSING = "Please enter your email address."
EMAIL_INVALID = "Please enter an email address like name@example.org."
EMAIL_DOMAIN = (
    "The part after the @ is not a domain that email can be sent to. Please enter an address like name@example.org."
)
TOO_LONG = "Please keep this to {limit} characters or fewer."

# Signing: why a post was not counted (yet).
TOO_QUICK = "Thank you! Just checking a person is signing: please press Sign again."
FORM_EXPIRED = "This form was open for a long time. Your details are kept below; please press Sign again."
FORM_BAD = "This form could not be checked. Please reload the page and sign again."
FORM_OUT_OF_DATE = "This form is out of date. Please reload the page and sign again."
OTHER_PLEDGE = "This form belongs to a different pledge. Please reload the page."
CROSS_SITE = "Signatures can only be sent from the pledge's own form."
SLOW_DOWN = "Many signatures are arriving from your connection. Please try again in a minute."
PARTNER_BUSY = "This form is receiving an unusual number of signatures. Please try again shortly."
NOT_A_FORM = "Please send the pledge form as a normal web form."
TOO_MANY_FIELDS = "That form had more fields than the pledge form has. Please reload the page and sign again."
TOO_LARGE = "That form was too large to accept. Please shorten what you typed and try again."
RESTARTING = "The service is restarting; please sign again in a moment."
NOT_RECORDED = "We could not record your signature just now; please try again."

# Partner tokens and where a widget may be shown.
TAMPERED = "This widget's code is damaged or incomplete. Please copy the snippet again from the campaign."
ROTATED = "This widget's code has been replaced by a newer one. Please ask the campaign for the current snippet."
REVOKED = "This organisation's widget has been switched off by the campaign."
WRONG_PLEDGE = "This widget's code belongs to a different pledge."
WRONG_SITE = "This form can only be shown on the websites the campaign approved for this organisation."

# Addresses and the server itself.
NO_PLEDGE_HERE = "There is no pledge at this address."
NO_SUCH_FILE = "There is no such file."
NO_SUCH_ADDRESS = "There is nothing at this address."
WRONG_METHOD = "This address does not accept that kind of request."
UNHANDLED = "That request could not be handled."
SERVER_ERROR = "Sorry, something went wrong on our side. Please try again in a moment."
# Answered by the HTTP layer itself, before the request reaches the app (server.py).
MALFORMED_REQUEST = "That request was not valid HTTP."
HEADERS_TOO_LARGE = "That request's headers were too large to accept."
SERVER_BUSY = "The service is very busy just now. Please try again in a moment."

# Storage, as the CLI and the error pages say it.
DATABASE_PROBLEM = "The database cannot be used just now ({problem}). Please try again in a moment."
CANNOT_OPEN = "Cannot open the database {path}: {problem}."
NOT_A_DATABASE = "{path} is not a usable widget database: {problem}."
ALREADY_STORED = "That is stored already."
NOTHING_TO_BACK_UP = "There is no database at {path} to back up."
BACKUP_EXISTS = "{dest} already exists; choose a new file name for the backup."
BACKUP_FOLDER_MISSING = "The folder {folder} does not exist."

# Campaign staff: pledges, partners, organisations, people.
NO_PLEDGE_CALLED = "There is no pledge called {slug!r}."
BAD_SLUG = "A slug is lower-case letters, digits and dashes, like 'data-pledge', not {slug!r}."
TITLE_MISSING = "The pledge needs a title."
STATEMENT_EMPTY = "The pledge statement is empty."
BAD_GOAL = "The goal must be a number of signatures from 1 to 1,000,000,000."
BAD_PRIVACY_URL = "The privacy URL must be an https:// address, or a path on this site starting with one /."
PLEDGE_EXISTS = "A pledge called {slug!r} already exists."
NO_PARTNER_CALLED = "Pledge {slug!r} has no partner called {name!r}."
PARTNER_NAME_MISSING = "The partner needs a name."
ORIGIN_MISSING = "Give at least one --origin: the partner's website, like https://example.org."
PARTNER_EXISTS = "Pledge {slug!r} already has a partner called {name!r}."
NO_ORGANISATION_CALLED = "No organisation called {name!r} has signed {slug!r}."
NOT_AN_EMAIL = "{email!r} is not an email address."
NO_PG_DUMP = "Backing up PostgreSQL needs pg_dump (Debian: apt-get install postgresql-client)."
EMPTY_DATABASE = "The database location is empty: give a file path, sqlite:///path or postgresql://host/database."
UNKNOWN_DATABASE = "The database is a file path, sqlite:///path or postgresql://host/database, not {scheme}://."
TARGET_NOT_EMPTY = "{target} already holds data; move a campaign only into an empty database."
MOVE_CHECK_FAILED = "The copy did not arrive whole ({problems}); the target should be emptied and the move run again."
WORKERS_NEED_POSTGRES = (
    "Several server processes need a database they can share: set WIDGET_DB to a postgresql:// URL,"
    " or serve with one process on SQLite."
)

# The staff area (web/staff/) and its commands: accounts, sessions, pledges, abuse, exports.
STAFF_LOGIN_FAILED = "That email address and password do not match an account."
STAFF_LOGIN_LOCKED = "Too many failed sign-ins. Please wait {minutes} and try again."
STAFF_LOGGED_OUT = "You have signed out."
STAFF_SESSION_ENDED = "Your session has ended. Please sign in again."
STAFF_CSRF = "This form has expired or did not come from this site. Please go back, reload the page and try again."
STAFF_FORBIDDEN = "Your account ({role}) cannot do this. Ask an owner if you need to."
STAFF_NO_ACCOUNT = "There is no staff account for {email!r}."
STAFF_ACCOUNT_EXISTS = "{email!r} already has a staff account."
STAFF_BAD_ROLE = "A role is owner, campaigner or viewer, not {role!r}."
STAFF_PASSWORD_SHORT = "A password needs at least {length} characters."
STAFF_PASSWORD_MISMATCH = "The two passwords are not the same."
STAFF_PASSWORD_WRONG = "Your current password is not right."
STAFF_LAST_OWNER = "This is the last owner account: add another owner first."
STAFF_NO_PASSWORD = "Set WIDGET_PASSWORD, or run this in a terminal to type the password."
STAFF_BAD_FIELD = "The optional questions are occupation and organisation, not {field!r}."
STAFF_NOTHING_TO_EDIT = "Say what to change: --title, --statement-file, --goal, --privacy-url, --contact or --fields."
PLEDGE_CLOSED = "This pledge has closed and is no longer collecting signatures. Thank you for your support."
PARTNER_LINK_BAD = "This link does not open a partner's report: it may have been replaced or mistyped."
BURST_BAD = "That is not a burst this panel can show."
STAFF_NOT_A_NUMBER = "{what} must be a whole number."

# Confirmed signatures (services/confirmation.py, web/widget/confirm.py, the emails).
# (Sentences for confirmation go here.)

# Partner webhooks and the outbox (services/webhooks.py, services/outbox.py, delivery/).
# (Sentences for webhooks and the outbox go here.)


def erased(signatures: int, scrubbed: bool) -> str:
    """What staff are told after an erasure: only "erased" when the database's files no longer hold it."""
    done = f"Erased {signatures} signature{'s' if signatures != 1 else ''}; counts are corrected to match."
    if scrubbed:
        return done
    return (
        done + " The database still holds an old copy because another program is reading it (a backup, a"
        " long export); it is overwritten when that reader finishes. Run the erasure again then to confirm."
    )
