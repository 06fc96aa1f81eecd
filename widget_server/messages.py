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
STAFF_NOTHING_TO_EDIT = (
    "Say what to change: --title, --statement-file, --goal, --privacy-url, --contact, --fields or --confirm-email."
)
PLEDGE_CLOSED = "This pledge has closed and is no longer collecting signatures. Thank you for your support."
PARTNER_LINK_BAD = "This link does not open a partner's report: it may have been replaced or mistyped."
BURST_BAD = "That is not a burst this panel can show."
STAFF_NOT_A_NUMBER = "{what} must be a whole number."

# Confirmed signatures (services/confirmation.py, web/widget/confirm.py, the emails).
CONFIRM_NEEDS_MAIL = (
    "Email confirmation needs a way to send email: set WIDGET_SMTP_URL and WIDGET_MAIL_FROM (for the server,"
    " and for this command) before switching it on."
)
CONFIRM_LINK_EXPIRED = (
    "This confirmation link has expired or was already used. To sign the pledge, please fill in its form again."
)
CONFIRMED = "Thank you, your signature now counts."
CONFIRMED_ALREADY = "Your signature was already confirmed, and it counts. Thank you."
CONFIRM_SUBJECT = "Please confirm your signature: {title}"
REMIND_SUBJECT = "Reminder: please confirm your signature: {title}"
# Why an email was not sent, for the outbox's "last error" and the log: never an address.
CONFIRM_NOTHING_TO_SEND = "nothing to send: the signature was confirmed, deleted or erased"
CONFIRM_NO_PLEDGE = "nothing to send: the pledge no longer exists"
MAIL_NOT_CONFIGURED = "no email can be sent: WIDGET_SMTP_URL and WIDGET_MAIL_FROM are not set"
MAIL_REFUSED_RECIPIENT = "the mail server refused the recipient ({codes})"
MAIL_REFUSED_SENDER = "the mail server refused the From address ({code})"
MAIL_REFUSED_MESSAGE = "the mail server refused the message ({code})"
MAIL_REFUSED_LOGIN = "the mail server refused the user name and password in WIDGET_SMTP_URL ({code})"
MAIL_UNSUPPORTED = "the mail server does not support what this message needs ({what})"
MAIL_ANSWERED = "the mail server answered {code}"
MAIL_DISCONNECTED = "the mail server closed the connection"
MAIL_NO_STARTTLS = "the mail server does not offer STARTTLS, which WIDGET_SMTP_URL requires"
MAIL_UNTRUSTED = "the mail server's certificate could not be trusted ({why})"
MAIL_TLS_FAILED = "TLS with the mail server failed ({why})"
MAIL_TIMEOUT = "the mail server did not answer in time"
MAIL_UNREACHABLE = "could not reach the mail server ({why})"
MAIL_FAILED = "the exchange with the mail server failed ({what})"

CONFIRM_WITHOUT_MAIL = (
    "A pledge asks for email confirmation, but WIDGET_SMTP_URL or WIDGET_MAIL_FROM is not set: its"
    " confirmation emails wait in the outbox until they are."
)

# Partner webhooks and the outbox (services/webhooks.py, services/outbox.py, delivery/).
WEBHOOK_URL_BAD = (
    "A webhook URL is an address such as https://crm.example.org/hooks/pledge: no spaces, quotes or #fragment."
)
WEBHOOK_URL_NOT_HTTPS = "A webhook URL must start with https://, so what is sent about supporters is encrypted."
WEBHOOK_URL_CREDENTIALS = (
    "A webhook URL must not hold a user name or password: every delivery is signed instead (docs/webhooks.md)."
)
WEBHOOK_URL_LOCAL = (
    "A webhook URL must name a public server, not this machine or a private network"
    " (WIDGET_WEBHOOK_ALLOW_LOCAL=on allows a partner's CRM inside your own network)."
)
WEBHOOK_URL_MISSING = "Give the webhook's address with --url, or switch it off with --off."
WEBHOOK_SET = "Signatures that agree to hear from {name} are now sent to {url}."
WEBHOOK_SECRET_ONCE = (
    "{name}'s signing secret is below. Send it to {name} now, privately: it will not be shown again"
    " (setting the webhook again makes a new one)."
)
WEBHOOK_OFF = "{name}'s webhook is switched off; messages still queued for it will not be sent."
WEBHOOK_WAS_OFF = "{name} had no webhook; nothing changed."
OUTBOX_NO_MESSAGE = "There is no message {id} in the outbox."
OUTBOX_NOT_DEAD = "Message {id} is not dead: it is still being tried, so there is nothing to retry by hand."
OUTBOX_NONE_DEAD = "No dead messages: nothing to retry."
OUTBOX_DISCARDED = "Message {id} is discarded: it will not be sent."
OUTBOX_EMPTY = "The outbox is empty: everything has been sent."
OUTBOX_NO_DEAD = "No dead messages."

# Why a delivery failed or was dropped: kept as the outbox's last error, shown to staff, logged. Never
# a supporter's data; the webhook's own address neither (its path may be a partner's secret).
DELIVERY_URL_REFUSED = "not sent: {problem}"
DELIVERY_ADDRESS_REFUSED = "not sent: the webhook's host resolves to {address}, which is not a public address"
DELIVERY_NO_HOST = "the webhook's host name could not be resolved ({problem})"
DELIVERY_CONNECT = "could not connect to the webhook's host ({problem})"
DELIVERY_TLS = "the webhook's server certificate was not accepted ({problem})"
DELIVERY_TIMEOUT = "the webhook did not answer within {seconds:g} seconds"
DELIVERY_STATUS = "the webhook answered HTTP {status}"
DELIVERY_REDIRECT = "the webhook answered HTTP {status}, a redirect, which is never followed"
DELIVERY_BAD_ANSWER = "the webhook's answer was not valid HTTP"
DELIVERY_NO_HANDLER = "nothing in this server sends {kind!r} messages"
DELIVERY_SEND_TIMEOUT = "not sent within {seconds:g} seconds"
DELIVERY_UNEXPECTED = "an unexpected error ({error})"
DROPPED_SIGNATURE_GONE = "the signature was erased or invalidated"
DROPPED_NO_WEBHOOK = "the partner's webhook is switched off"
DROPPED_PARTNER_REVOKED = "the partner was revoked: nothing more is sent to it"
DROPPED_NO_CONSENT = "the signer did not agree to hear from this partner"


def outbox_retried(count: int) -> str:
    """What staff are told after retrying dead messages by hand."""
    return f"{count} message{'s' if count != 1 else ''} will be tried again now."


def erased(signatures: int, scrubbed: bool) -> str:
    """What staff are told after an erasure: only "erased" when the database's files no longer hold it."""
    done = f"Erased {signatures} signature{'s' if signatures != 1 else ''}; counts are corrected to match."
    if scrubbed:
        return done
    return (
        done + " The database still holds an old copy because another program is reading it (a backup, a"
        " long export); it is overwritten when that reader finishes. Run the erasure again then to confirm."
    )
