"""Hand-made .dat files for parser and validator tests: exact control over every byte."""

from __future__ import annotations

from pathlib import Path

VISA = ["4111111111111111", "4012888888881881", "5555555555554444", "378282246310005"]


def txn(tid: str = "TX1", amount: int = 12345, card: str = VISA[0], **overrides: str) -> str:
    fields = {
        "transaction_id": tid,
        "account_id": "123456789012",
        "card_number": card,
        "transaction_ts": "20240301101112",
        "posted_date": "20240301",
        "amount": f"{amount:012d}",
        "debit_credit": "D",
        "currency": "USD",
        "merchant_name": "ACME",
        "mcc": "5411",
        "channel": "POS",
        "status": "POSTED",
        "action": "A",
    }
    fields.update(overrides)
    return "D|" + "|".join(fields.values())


def txn_file(
    details: list[str],
    *,
    date: str = "20240301",
    count: int | None = None,
    total: int | None = None,
    header: str | None = None,
) -> list[str]:
    if total is None:
        total = sum(int(d.split("|")[6]) for d in details if d.count("|") == 13 and d.split("|")[6].isdigit())
    head = header if header is not None else f"H|TRANSACTIONS|{date}|20240302010203|01|CORE"
    return [head, *details, f"T|{len(details) if count is None else count}|{total:015d}"]


def acct(
    account: str = "000000000001",
    balance: int = 12345,
    sign: str = "+",
    limit: int = 500000,
    due: str = "20240325",
    dpd: int = 0,
    product: str = "CCPL",
    status: str = "A",
) -> str:
    line = (
        f"D{account}0000000001{product}20200101{status}{sign}{balance:012d}{limit:012d}{max(limit - balance, 0):012d}"
        f"{2500:012d}{due:<8}{dpd:03d}24990"
    )
    return line.ljust(120)


def acct_file(
    details: list[str], *, date: str = "20240301", count: int | None = None, total: int | None = None
) -> list[str]:
    if total is None:
        total = sum(int(d[37:49]) * (-1 if d[36] == "-" else 1) for d in details if len(d) == 120)
    sign = "-" if total < 0 else "+"
    head = ("H" + "ACCOUNT_SUMMARY".ljust(20) + date + "20240302010203").ljust(120)
    trail = ("T" + f"{len(details) if count is None else count:09d}" + sign + f"{abs(total):015d}").ljust(120)
    return [head, *details, trail]


def write(path: Path, lines: list[str], *, newline: str = "\n", final: bool = True, bom: bool = False) -> Path:
    data = newline.join(lines) + (newline if final else "")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data.encode("utf-8"))
    return path
