"""Every setting, declared once: its default, its environment variable and a help sentence.

The CLI and `create_app` both override these; nothing reads the environment at import time.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import secrets
from dataclasses import dataclass, field, fields, replace
from email.policy import default as email_policy
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from widget_server.errors import ConfigError

# Bytes of key material a signing key needs: HMAC-SHA256's own output size. A short key is
# recovered from one public token by trying keys (a one-character key in under a second).
MIN_KEY_BYTES = 32

# What a public URL may look like: it is pasted into snippets and pages, so nothing that could
# end an attribute or add a scheme of its own, and the host as DNS spells it (A-labels).
_PUBLIC_URL = re.compile(r"^https?://(?:[A-Za-z0-9.-]+|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~%/-]*)?$")


def _setting(default: Any, env: str, help: str, bounds: tuple[float, float] | None = None) -> Any:
    """A setting's default, environment variable and help; `bounds` (least, most) for numbers."""
    return field(default=default, metadata={"env": env, "help": help, "bounds": bounds})


@dataclass(frozen=True)
class Settings:
    data_dir: Path = _setting(
        Path("widget-data"),
        "WIDGET_DATA_DIR",
        "Folder for the SQLite file and the generated secret key.",
    )
    db_path: str | None = _setting(
        None,
        "WIDGET_DB",
        "The database: a SQLite file path or sqlite:///path (default: DATA_DIR/widget.sqlite3),"
        " or postgresql://user:password@host:port/database for several server processes.",
    )
    secret_key: str = _setting(
        "", "WIDGET_SECRET_KEY", "Key that signs tokens (default: generated into DATA_DIR/secret.key)."
    )
    secret_key_fallbacks: tuple[str, ...] = _setting(
        (),
        "WIDGET_SECRET_KEY_FALLBACKS",
        "Older keys, comma-separated, still accepted for verification during a key rotation.",
    )
    public_url: str = _setting("http://127.0.0.1:8000", "WIDGET_PUBLIC_URL", "The URL that snippets point at.")
    rate_limit: str = _setting(
        "30/minute", "WIDGET_RATE_LIMIT", "Signatures per client (keyed IP hash); 'off' disables."
    )
    partner_rate_limit: str = _setting(
        "3000/minute", "WIDGET_PARTNER_RATE_LIMIT", "Signatures per partner; 'off' disables."
    )
    trusted_proxies: tuple[str, ...] = _setting(
        (),
        "WIDGET_TRUSTED_PROXIES",
        "Comma-separated proxy IPs whose X-Forwarded-For / X-Forwarded-Proto are believed.",
    )
    form_token_hours: float = _setting(
        6.0, "WIDGET_FORM_TOKEN_HOURS", "How long a rendered sign form stays valid.", (1 / 60, 7 * 24)
    )
    min_fill_seconds: float = _setting(
        2.0, "WIDGET_MIN_FILL_SECONDS", "Forms sent sooner than this after rendering are not counted.", (0, 600)
    )
    max_body_bytes: int = _setting(
        16 * 1024, "WIDGET_MAX_BODY_BYTES", "Largest request body accepted (413 beyond).", (1024, 1024 * 1024)
    )
    max_header_bytes: int = _setting(
        16 * 1024,
        "WIDGET_MAX_HEADER_BYTES",
        "Largest request head (request line and headers) accepted; 431 beyond.",
        (1024, 1024 * 1024),
    )
    header_timeout_seconds: float = _setting(
        10.0,
        "WIDGET_HEADER_TIMEOUT_SECONDS",
        "How long a client may take to send a request's head; the connection is closed after.",
        (0.1, 600),
    )
    body_timeout_seconds: float = _setting(
        30.0,
        "WIDGET_BODY_TIMEOUT_SECONDS",
        "How long a client may take to send a request's body once its head is in; closed after.",
        (0.1, 600),
    )
    max_connections: int = _setting(
        1000,
        "WIDGET_MAX_CONNECTIONS",
        "Open connections (or requests in progress) beyond which a new request is answered 503.",
        (1, 1_000_000),
    )
    direct_frame_origins: tuple[str, ...] = _setting(
        (),
        "WIDGET_DIRECT_FRAME_ORIGINS",
        "Origins (the campaign's own sites) that may frame the form when it has no partner token.",
    )
    cache_seconds: float = _setting(
        2.0,
        "WIDGET_CACHE_SECONDS",
        "How long pledge and partner rows are cached in memory; a revocation takes this long.",
        (0, 3600),
    )
    batch_size: int = _setting(256, "WIDGET_BATCH_SIZE", "Most signatures written in one commit.", (1, 100_000))
    workers: int = _setting(
        1,
        "WIDGET_WORKERS",
        "Server processes on this host (serve --workers); the rate limits are divided among them."
        " More than one needs PostgreSQL.",
        (1, 64),
    )
    db_pool_size: int = _setting(
        10,
        "WIDGET_DB_POOL_SIZE",
        "PostgreSQL connections per server process; keep processes × this under the server's max_connections.",
        (1, 1000),
    )
    staff_idle_minutes: float = _setting(
        30.0, "WIDGET_STAFF_IDLE_MINUTES", "A staff session ends after this long without a request."
    )
    staff_session_hours: float = _setting(
        12.0, "WIDGET_STAFF_SESSION_HOURS", "A staff session ends this long after signing in, however busy."
    )
    smtp_url: str = _setting(
        "",
        "WIDGET_SMTP_URL",
        "Where confirmation emails go: smtp://host:port (plain, for a relay on this network),"
        " smtp+starttls://user:password@host:587 or smtps://user:password@host:465; empty: no email,"
        " so no pledge can ask for confirmation.",
    )
    mail_from: str = _setting(
        "", "WIDGET_MAIL_FROM", "The From address of confirmation emails, e.g. Pledge <pledge@example.org>."
    )
    confirm_sends: int = _setting(
        3,
        "WIDGET_CONFIRM_SENDS",
        "Most confirmation emails one address gets for one pledge (signing again re-sends one).",
        (1, 20),
    )
    confirm_reminder_hours: float = _setting(
        48.0,
        "WIDGET_CONFIRM_REMINDER_HOURS",
        "One reminder this long after signing, to whoever has not confirmed yet; 0: no reminder.",
        (0, 24 * 365),
    )
    confirm_retention_hours: float = _setting(
        14 * 24.0,
        "WIDGET_CONFIRM_RETENTION_HOURS",
        "Unconfirmed signatures are deleted this long after signing, and their links stop working.",
        (1 / 3600, 24 * 365),
    )
    webhook_allow_local: str = _setting(
        "off",
        "WIDGET_WEBHOOK_ALLOW_LOCAL",
        "'on' lets partner webhooks use http:// and reach private, loopback and link-local addresses"
        " (tests, or a partner's CRM inside your own network).",
    )
    outbox_first_retry_seconds: float = _setting(
        10.0,
        "WIDGET_OUTBOX_FIRST_RETRY_SECONDS",
        "Wait before the first retry of an email or webhook that failed; each next wait doubles (with jitter).",
        (0.001, 3600),
    )
    outbox_attempts: int = _setting(
        12,
        "WIDGET_OUTBOX_ATTEMPTS",
        "Attempts at one email or webhook before it is marked dead for staff to retry or discard.",
        (1, 50),
    )
    access_log: str = _setting(
        "on",
        "WIDGET_ACCESS_LOG",
        "A JSON line per request (method, path, status, ms; never an IP); 'off' when a proxy in front already logs.",
    )

    def __post_init__(self) -> None:
        """Refuse weak or meaningless configuration at start-up, in one line that names it."""
        for f in fields(self):
            bounds = f.metadata["bounds"]
            if bounds is not None:
                _check_number(getattr(self, f.name), f.type, bounds, f.metadata["env"])
        if self.min_fill_seconds >= self.form_token_hours * 3600:
            raise ConfigError(
                f"WIDGET_MIN_FILL_SECONDS ({self.min_fill_seconds:g}) must be shorter than a form's lifetime,"
                f" WIDGET_FORM_TOKEN_HOURS ({self.form_token_hours:g} h)."
            )
        _check_key("WIDGET_SECRET_KEY", self.secret_key)
        for key in self.secret_key_fallbacks:
            _check_key("WIDGET_SECRET_KEY_FALLBACKS", key)
        if not _PUBLIC_URL.match(self.public_url) or not _port_ok(self.public_url):
            raise ConfigError(
                f"WIDGET_PUBLIC_URL is an http:// or https:// address such as https://widgets.example.org"
                f" (the host in ASCII, no query), not {self.public_url!r}."
            )
        if self.confirm_reminder_hours and self.confirm_reminder_hours >= self.confirm_retention_hours:
            raise ConfigError(
                f"WIDGET_CONFIRM_REMINDER_HOURS ({self.confirm_reminder_hours:g}) must be shorter than"
                f" WIDGET_CONFIRM_RETENTION_HOURS ({self.confirm_retention_hours:g}): the reminder would come"
                " after the signature is deleted."
            )
        _switch("WIDGET_WEBHOOK_ALLOW_LOCAL", self.webhook_allow_local)
        _check_smtp_url(self.smtp_url)
        _check_mail_from(self.mail_from)
        if bool(self.smtp_url.strip()) != bool(self.mail_from.strip()):
            raise ConfigError(
                "WIDGET_SMTP_URL and WIDGET_MAIL_FROM go together: set both to send confirmation emails, or neither."
            )
        if self.db_path is not None and not str(self.db_path).strip():
            raise ConfigError("The database (--db or WIDGET_DB) is empty; give a SQLite file's path or a database URL.")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then the environment, then explicit overrides (flags, tests)."""
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(f.metadata["env"])
            if raw is not None and raw != "":
                values[f.name] = _parse(f.name, f.type, raw, f.metadata["env"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_overrides(self, **overrides: Any) -> Settings:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def as_environment(self) -> dict[str, str]:
        """Every setting as the environment variable that gives it: how worker processes get them."""
        found = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "secret_key" and not value.strip():
                value = self.resolved_secret_key()  # one key for every worker, read or made once here
            if value is None:
                continue
            found[f.metadata["env"]] = ",".join(value) if isinstance(value, tuple) else str(value)
        return found

    @property
    def access_log_on(self) -> bool:
        """WIDGET_ACCESS_LOG as a switch; anything but on/off is a configuration error."""
        return _switch("WIDGET_ACCESS_LOG", self.access_log)

    @property
    def webhook_local_allowed(self) -> bool:
        """WIDGET_WEBHOOK_ALLOW_LOCAL as a switch."""
        return _switch("WIDGET_WEBHOOK_ALLOW_LOCAL", self.webhook_allow_local)

    @property
    def mail_configured(self) -> bool:
        """True when confirmation emails can be sent: an SMTP URL and a From address."""
        return bool(self.smtp_url.strip() and self.mail_from.strip())

    @property
    def database(self) -> Path | str:
        """A SQLite file's path (sqlite:///path read as its path), or a PostgreSQL URL as given."""
        if not self.db_path:
            return Path(self.data_dir) / "widget.sqlite3"
        if self.db_path.startswith("sqlite:///"):
            return Path(self.db_path[len("sqlite:///") :])
        if "://" in self.db_path:
            return self.db_path
        return Path(self.db_path)

    def signing_keys(self) -> list[str]:
        """Oldest first, newest last: the order itsdangerous expects for key rotation."""
        return [*self.secret_key_fallbacks, self.resolved_secret_key()]

    def resolved_secret_key(self) -> str:
        if self.secret_key.strip():
            return self.secret_key
        return load_or_create_secret(Path(self.data_dir) / "secret.key")


def _switch(env: str, value: str) -> bool:
    """An on/off setting; anything else is a configuration error naming it."""
    word = value.strip().lower()
    if word not in ("on", "off"):
        raise ConfigError(f"{env} is 'on' or 'off', not {value!r}.")
    return word == "on"


def _parse(name: str, type_: Any, raw: str, env: str) -> Any:
    type_name = str(type_)
    try:
        if "tuple" in type_name:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if "Path" in type_name:
            return Path(raw)
        if type_name == "int":
            return int(raw)
        if type_name == "float":
            return float(raw)
    except ValueError:
        raise ConfigError(f"{env} must be a number, not {raw!r}.") from None
    return raw


def _check_number(value: Any, type_: Any, bounds: tuple[float, float], env: str) -> None:
    least, most = bounds
    whole = str(type_) == "int"
    if whole and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{env} must be a whole number, not {value!r}.")
    # NaN fails every comparison, so it is caught here with infinity and the negative numbers.
    if not (isinstance(value, int | float) and math.isfinite(value) and least <= value <= most):
        raise ConfigError(f"{env} must be a number from {_shown(least)} to {_shown(most)}, not {value!r}.")


def _shown(number: float) -> str:
    return f"{number:,.0f}" if float(number).is_integer() else f"{number:.3g}"


def _check_key(env: str, key: str) -> None:
    size = len(key.encode())
    if key.strip() and size < MIN_KEY_BYTES:
        raise ConfigError(
            f"{env} holds a key of {size} byte{'s' if size != 1 else ''}; a key needs at least {MIN_KEY_BYTES}"
            " bytes of random material (python3 -c 'import secrets; print(secrets.token_urlsafe(48))')."
        )


SMTP_SCHEMES = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")


def _shown_smtp_url(url: str) -> str:
    """The URL as an error message may quote it: never its password."""
    # Up to the last @ of the part before any path: a password may hold "/" or "@" when typed raw.
    return re.sub(r"(://[^/@:]*:).*@", r"\1…@", url)


def _check_smtp_url(url: str) -> None:
    """WIDGET_SMTP_URL: empty (no email), or a scheme of SMTP_SCHEMES, a host and a usable port."""
    if not url.strip():
        return
    shown = _shown_smtp_url(url)
    try:
        parts = urlsplit(url)
    except ValueError:  # an unbalanced [ in the host
        parts = urlsplit("smtp://")
    try:
        port = parts.port
    except ValueError:  # not a number, or beyond 65535
        port = -1
    if parts.scheme not in SMTP_SCHEMES:
        raise ConfigError(
            f"WIDGET_SMTP_URL starts with smtp://, smtp+starttls:// or smtps://, such as"
            f" smtp+starttls://user:password@mail.example.org:587, not {shown!r}."
        )
    if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(
            f"WIDGET_SMTP_URL names the mail server's host, as in smtps://mail.example.org:465, not {shown!r}."
        )
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(f"WIDGET_SMTP_URL's port is a number from 1 to 65535, not in {shown!r}.")
    if parts.scheme == "smtp" and (parts.username or parts.password):
        # Credentials sent before TLS could be read by anyone on the path to the server.
        raise ConfigError(
            "WIDGET_SMTP_URL sends a user name and password only over TLS: use smtp+starttls:// or smtps://."
        )


def _check_mail_from(value: str) -> None:
    """WIDGET_MAIL_FROM: empty, or one address with an optional display name."""
    if not value.strip():
        return
    problem = not value.isprintable()
    if not problem:
        try:
            header = email_policy.header_factory("From", value)
            addresses = header.addresses
            problem = bool(header.defects) or len(addresses) != 1
            problem = problem or not (addresses[0].username and _DOMAIN.match(addresses[0].domain))
        except (IndexError, ValueError):
            problem = True
    if problem:
        raise ConfigError(
            f"WIDGET_MAIL_FROM is one email address, optionally with a name, like Pledge <pledge@example.org>,"
            f" not {value!r}."
        )


def _port_ok(url: str) -> bool:
    try:
        return urlsplit(url).port != 0
    except ValueError:  # beyond 65535
        return False


def port_number(text: str) -> int:
    """An argparse type: a TCP port from 1 to 65535 (a bigger number would bind another port)."""
    port = int(text) if text.strip().isdigit() else 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 1 to 65535, not {text!r}")
    return port


def database_path(text: str) -> str:
    """An argparse type: a database (file path or URL), never empty (which would mean the default file)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the database is empty; give a SQLite file's path or a database URL")
    return text


MIN_KEY_FILE_LENGTH = MIN_KEY_BYTES


def load_or_create_secret(path: Path) -> str:
    """Read the key file, or create it (mode 0600) on first use; never accept an empty key.

    The key is written to a private temporary file and linked into place, so a second process
    starting at the same moment reads a whole key or none, never a half-written one.
    """
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        key = _create_secret(path)
    except OSError as exc:
        raise ConfigError(f"Cannot read the secret key file {path}: {exc.strerror}.") from None
    if len(key) < MIN_KEY_FILE_LENGTH:
        raise ConfigError(
            f"The secret key file {path} holds no usable key; delete it to generate a new one "
            "(partners' snippets will then need re-issuing with `partner rotate`)."
        )
    return key


def _create_secret(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(temporary, path)
    except FileExistsError:  # another process won the race: use its key
        return path.read_text().strip()
    finally:
        temporary.unlink()
    return key


def help_table() -> list[tuple[str, str, str]]:
    """(environment variable, default, help) for the README and `--help`."""
    return [(f.metadata["env"], str(f.default), f.metadata["help"]) for f in fields(Settings)]
