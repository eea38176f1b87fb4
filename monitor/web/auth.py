"""The web interface's password, login sessions and CSRF tokens (no web stack imported).

- The password is kept only as a scrypt hash in `web-password` in the config
  folder (mode 0600), written by `monitor web passwd`. Without it, the pages
  are served on loopback only; with it, every page but the login asks for it.
- A session is a signed cookie: a random id, an expiry and whether the holder
  logged in, with an HMAC. The key is derived from the stored hash, so changing
  the password logs everybody out. Without a password the key is random per
  process.
- The CSRF token of a page is an HMAC of the session id: a form posted from
  another site has neither the cookie (SameSite=Strict) nor the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from monitor.errors import ConfigError

PASSWORD_FILE = "web-password"
SESSION_COOKIE = "monitor_session"
SESSION_SECONDS = 7 * 24 * 3600
MIN_PASSWORD = 8
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str, salt: bytes | None = None) -> str:
    """`scrypt$N$r$p$salt$hash`, base64 parts: the line stored in web-password."""
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return "$".join(["scrypt", str(_SCRYPT["n"]), str(_SCRYPT["r"]), str(_SCRYPT["p"]),
                     _b64(salt), _b64(digest)])


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.strip().split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(_unb64(digest)))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, _unb64(digest))


def password_path(config_dir: Path) -> Path:
    return config_dir / PASSWORD_FILE


def read_password_hash(config_dir: Path) -> str | None:
    """The stored hash, or None when no password was set."""
    path = password_path(config_dir)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read the web password: {exc.strerror}", path=path) from None
    if not text.startswith("scrypt$"):
        raise ConfigError("not a password hash; set it again with `monitor web passwd`", path=path)
    return text


def write_password(config_dir: Path, password: str) -> Path:
    """Store the hash of PASSWORD, readable by its owner only, replacing any old one."""
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"the password must be at least {MIN_PASSWORD} characters")
    path = password_path(config_dir)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(hash_password(password) + "\n")
    os.replace(temporary, path)
    return path


@dataclass(frozen=True)
class Session:
    id: str
    expires: int
    logged_in: bool


class Guard:
    """Signs and checks session cookies and CSRF tokens for one password (or none)."""

    def __init__(self, password_hash: str | None) -> None:
        self.password_hash = password_hash
        seed = password_hash.encode() if password_hash else secrets.token_bytes(32)
        self._key = hashlib.sha256(b"monitor web session\0" + seed).digest()

    @property
    def needs_login(self) -> bool:
        return self.password_hash is not None

    def new_session(self, *, logged_in: bool, now: float | None = None) -> Session:
        expires = int((now if now is not None else time.time()) + SESSION_SECONDS)
        return Session(secrets.token_urlsafe(16), expires, logged_in)

    def cookie_value(self, session: Session) -> str:
        body = f"{session.id}.{session.expires}.{int(session.logged_in)}"
        return f"{body}.{self._sign('session', body)}"

    def read_cookie(self, value: str | None, now: float | None = None) -> Session | None:
        """The session a cookie carries, or None if it is missing, forged or expired."""
        if not value:
            return None
        body, _, signature = value.rpartition(".")
        if not hmac.compare_digest(signature, self._sign("session", body)):
            return None
        try:
            sid, expires, logged_in = body.split(".")
            session = Session(sid, int(expires), logged_in == "1")
        except ValueError:
            return None
        if session.expires < (now if now is not None else time.time()):
            return None
        return session

    def csrf_token(self, session: Session) -> str:
        return self._sign("csrf", session.id)

    def check_csrf(self, session: Session | None, token: str | None) -> bool:
        return bool(session and token and hmac.compare_digest(token, self.csrf_token(session)))

    def check_password(self, password: str) -> bool:
        return self.password_hash is not None and check_password(password, self.password_hash)

    def flash_signature(self, session: Session, text: str) -> str:
        """A message shown after a redirect is shown only if this server put it in the link,
        so nobody can make the page say something by sending a crafted link."""
        return self._sign("flash", f"{session.id}\0{text}")

    def _sign(self, purpose: str, text: str) -> str:
        return _b64(hmac.new(self._key, f"{purpose}:{text}".encode(), hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def guard_for(host: str, port: int, config_dir: Path) -> Guard:
    """The guard for serving on HOST; UsageError when HOST is reachable from other
    machines and no password is set (the pages can change the watch and send alerts)."""
    from monitor.config.listen import is_loopback, show_address
    from monitor.errors import UsageError

    password_hash = read_password_hash(config_dir)
    if password_hash is None and not is_loopback(host):
        raise UsageError(f"refusing to serve the web interface on {show_address(host, port)} without "
                         "a password: set one with `monitor web passwd`, or listen on 127.0.0.1 "
                         "(and reach it through an SSH tunnel)")
    return Guard(password_hash)
