"""Every setting, declared once: its default, its environment variable and a help sentence.

The CLI and `create_app` both override these; nothing reads the environment at import time.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from widget_server.errors import ConfigError


def _setting(default: Any, env: str, help: str) -> Any:
    return field(default=default, metadata={"env": env, "help": help})


@dataclass(frozen=True)
class Settings:
    data_dir: Path = _setting(
        Path("widget-data"),
        "WIDGET_DATA_DIR",
        "Folder for the SQLite file and the generated secret key.",
    )
    db_path: Path | None = _setting(
        None, "WIDGET_DB", "SQLite database file (default: DATA_DIR/widget.sqlite3)."
    )
    secret_key: str = _setting(
        "", "WIDGET_SECRET_KEY", "Key that signs tokens (default: generated into DATA_DIR/secret.key)."
    )
    secret_key_fallbacks: tuple[str, ...] = _setting(
        (),
        "WIDGET_SECRET_KEY_FALLBACKS",
        "Older keys, comma-separated, still accepted for verification during a key rotation.",
    )
    public_url: str = _setting(
        "http://127.0.0.1:8000", "WIDGET_PUBLIC_URL", "The URL that snippets point at."
    )
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
        6.0, "WIDGET_FORM_TOKEN_HOURS", "How long a rendered sign form stays valid."
    )
    min_fill_seconds: float = _setting(
        2.0, "WIDGET_MIN_FILL_SECONDS", "Forms sent sooner than this after rendering are not counted."
    )
    max_body_bytes: int = _setting(
        16 * 1024, "WIDGET_MAX_BODY_BYTES", "Largest request body accepted (413 beyond)."
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
    )
    batch_size: int = _setting(256, "WIDGET_BATCH_SIZE", "Most signatures written in one commit.")
    access_log: str = _setting(
        "on",
        "WIDGET_ACCESS_LOG",
        "A JSON line per request (method, path, status, ms; never an IP); 'off' when a proxy in front already logs.",
    )

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

    @property
    def access_log_on(self) -> bool:
        """WIDGET_ACCESS_LOG as a switch; anything but on/off is a configuration error."""
        value = self.access_log.strip().lower()
        if value not in ("on", "off"):
            raise ConfigError(f"WIDGET_ACCESS_LOG is 'on' or 'off', not {self.access_log!r}.")
        return value == "on"

    @property
    def database(self) -> Path:
        return Path(self.db_path) if self.db_path else Path(self.data_dir) / "widget.sqlite3"

    def signing_keys(self) -> list[str]:
        """Oldest first, newest last: the order itsdangerous expects for key rotation."""
        return [*self.secret_key_fallbacks, self.resolved_secret_key()]

    def resolved_secret_key(self) -> str:
        if self.secret_key.strip():
            return self.secret_key
        return load_or_create_secret(Path(self.data_dir) / "secret.key")


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


MIN_KEY_FILE_LENGTH = 32


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
