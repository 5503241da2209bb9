"""A database URL or conninfo string, read safely: where it points, shown without its password, whatever its shape.

``ETL_DATABASE_URL`` can hold anything: a good URL, a password with an unencoded ``@``, ``%`` or space, a
keyword conninfo with an unterminated quote, or just the bare secret pasted by mistake. libpq's own parser
echoes the faulty token in its error ("invalid percent-encoded token: "S3cretPW%zz"") and can even read a
password as a host or port (``postgres://etl:pw/x@h/db`` -> host ``etl``, port ``pw``), after which every
connection error quotes it. So:

- :func:`display` is THE one way to show a database location: user, host, port and database only, never the
  password, never raises, and for an unreadable value says so without showing any of it;
- :func:`checked` refuses (a :class:`~etl.errors.ConfigError`, value not shown) what libpq would misread,
  before libpq sees it;
- :func:`scrub` takes the password (and any credentials text) out of a driver message, for the errors that
  must still say what went wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from psycopg.conninfo import conninfo_to_dict

from etl.errors import ConfigError

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)$", re.DOTALL)
# what may stand in a URL's user:password without percent-encoding (RFC 3986 userinfo), and valid escapes
_USERINFO = re.compile(r"^(?:[A-Za-z0-9\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2})*$")
_HOST_PORT_DB = re.compile(r"^(?:[A-Za-z0-9\-._~%!$&'()*+,;=:\[\]]|%[0-9A-Fa-f]{2})*$")
_HOST = re.compile(r"^(?:\[[0-9A-Fa-f:.]*\]|[^:\[\]]*)(?::[0-9]*)?$")
SHOWN_KEYS = ("user", "host", "port", "dbname")
UNREADABLE = "a database URL that cannot be read (value not shown)"


class DatabaseUrlError(ConfigError, ValueError):
    """The database URL or conninfo cannot be used as it is; the message never holds any of its text.
    (A ValueError too: callers that catch a bad value catch this one.)"""


@dataclass(frozen=True)
class _Url:
    """A URL split by hand, credentials up to the LAST ``@`` (a password may hold ``@``, ``/`` or ``?``)."""

    scheme: str
    credentials: str | None  # "user:password" as written, or None
    address: str  # host[:port][/dbname], query dropped
    ambiguous: bool  # the last "@" is not where the standard reading puts it: which part is the password?

    @classmethod
    def split(cls, text: str) -> _Url | None:
        match = _SCHEME.match(text.strip())
        if not match:
            return None
        rest = match["rest"]
        credentials, at, address = rest.rpartition("@")
        if not at:
            credentials, address = None, rest
        address = address.split("?", 1)[0].split("#", 1)[0]
        # the standard reading: the authority ends at the first "/", "?" or "#"; its last "@" ends the userinfo
        authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
        standard = authority.rpartition("@")[0] if "@" in authority else None
        return cls(match["scheme"], credentials, address, standard != credentials)

    @property
    def user(self) -> str | None:
        return None if self.credentials is None else self.credentials.split(":", 1)[0]

    @property
    def password(self) -> str | None:
        if self.credentials is None or ":" not in self.credentials:
            return None
        return self.credentials.split(":", 1)[1]

    @property
    def hosts_ok(self) -> bool:
        """Hosts and ports as a URL writes them: a port is digits (``etl:pw/db`` without ``@`` is not a host)."""
        hosts = self.address.split("/", 1)[0]
        return all(_HOST.match(item) for item in hosts.split(",")) and bool(_HOST_PORT_DB.match(hosts))

    def shown(self) -> str:
        if self.ambiguous:
            return f"{self.scheme}://? (a URL that cannot be read as written; value not shown)"
        user = self.user if self.user and _USERINFO.match(self.user) else None
        hosts, slash, dbname = self.address.partition("/")
        hosts = hosts if self.hosts_ok else "?"
        dbname = dbname if _HOST_PORT_DB.match(dbname) else "?"
        return f"{self.scheme}://{unquote(user) + '@' if user else ''}{hosts}{slash}{dbname}"


def display(conninfo: str) -> str:
    """Where ``conninfo`` (a URL or keyword conninfo) points, for a person: never the password; never raises.

    URLs are read by hand (credentials up to the last ``@``), so a password libpq would misread as a host
    or a database name is not shown either; keyword strings through libpq, showing only user, host, port
    and database. Anything else is described, not shown.
    """
    try:
        url = _Url.split(conninfo)
        if url is not None:
            return url.shown()
        params = conninfo_to_dict(conninfo)
    except Exception:  # any shape at all: say that it cannot be read, show none of it
        return UNREADABLE
    user, host, port, dbname = (params.get(k) for k in SHOWN_KEYS)
    where = f"postgresql://{user + '@' if user else ''}{host or ''}{f':{port}' if port else ''}/{dbname or ''}"
    return where


def checked(conninfo: str) -> str:
    """``conninfo`` when libpq will read it as written; else a :class:`DatabaseUrlError` that shows none of it.

    A URL's password must be percent-encoded (``@`` as ``%40``, ``%`` as ``%25``, a space as ``%20``);
    unencoded, libpq splits the URL elsewhere (the password becomes the host, port or database name).
    """
    url = _Url.split(conninfo)
    if url is not None and url.ambiguous:
        raise DatabaseUrlError(
            f"the database URL {url.scheme}://... cannot be read as written: percent-encode @, /, ? and # in "
            "its user and password (@ as %40, / as %2F, ? as %3F, # as %23); value not shown"
        )
    if url is not None and not url.hosts_ok:
        raise DatabaseUrlError(
            f"the database URL {display(conninfo)} has no valid host and port (a port is digits; is the user:password "
            "missing its @?); value not shown"
        )
    if url is not None and url.credentials is not None and not _USERINFO.match(url.credentials):
        raise DatabaseUrlError(
            f"the database URL {display(conninfo)} has characters in its user or password that must be "
            "percent-encoded (@ as %40, % as %25, a space as %20, / as %2F); value not shown"
        )
    try:
        params = conninfo_to_dict(conninfo)
    except Exception:
        what = "PostgreSQL URL" if url is not None else "PostgreSQL URL or conninfo string"
        raise DatabaseUrlError(f"the database location is not a valid {what} (value not shown)") from None
    if url is not None and url.password is not None and params.get("password") != unquote(url.password):
        raise DatabaseUrlError(f"the database URL {display(conninfo)} cannot be read as written (value not shown)")
    return conninfo


def secrets_of(conninfo: str) -> list[str]:
    """Every text of ``conninfo`` that must never be printed: the password as written and decoded, the raw
    credentials of a URL, and the whole string itself (a bare secret pasted as the URL)."""
    found = {conninfo.strip()}
    url = _Url.split(conninfo)
    if url is not None and url.credentials:
        found.add(url.credentials)
        if url.password:
            found |= {url.password, unquote(url.password)}
    try:
        password = conninfo_to_dict(conninfo).get("password")
    except Exception:
        password = None
    if password:
        found.add(password)
    return sorted((s for s in found if len(s) >= 3), key=len, reverse=True)


def scrub(message: str, conninfo: str) -> str:
    """``message`` (a driver error) with every secret text of ``conninfo`` replaced by ``***``."""
    for secret in secrets_of(conninfo):
        message = message.replace(secret, "***")
    return message
