"""Deterministic names: the same file always gets the same execution name, so a repeated event is a no-op."""

from __future__ import annotations

import datetime as dt
import re

_ALLOWED = re.compile(r"[^A-Za-z0-9_-]")


def execution_name(feed: str, business_date: dt.date | None, sha256: str) -> str:
    """``<feed>-<YYYYMMDD>-<first 16 hex of the content hash>``: valid as a Step Functions name (<= 80 chars)."""
    day = business_date.strftime("%Y%m%d") if business_date else "nodate"
    return _ALLOWED.sub("_", f"{feed}-{day}-{sha256[:16]}")[:80]
