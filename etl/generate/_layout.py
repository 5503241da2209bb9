"""Reading and writing single records of a feed by its contract (header, trailer, edited detail lines).

Detail chunks are formatted in bulk elsewhere; this is for the few records that are built or edited one at
a time: header, trailer and the lines a corruption touches. Works for delimited and fixed-width feeds.
"""

from __future__ import annotations

from etl.contract import Contract, FieldSpec

ENCODING = "ascii"


def _spec(specs: tuple[FieldSpec, ...], name: str) -> FieldSpec:
    for spec in specs:
        if spec.name == name:
            return spec
    raise KeyError(name)


def get_field(contract: Contract, specs: tuple[FieldSpec, ...], line: bytes, name: str) -> bytes:
    spec = _spec(specs, name)
    if spec.position is not None:
        return line[spec.position[0] - 1 : spec.position[1]]
    parts = line.split(contract.delimiter.encode())
    return parts[spec.index] if spec.index < len(parts) else b""


def set_field(contract: Contract, specs: tuple[FieldSpec, ...], line: bytes, name: str, value: bytes) -> bytes:
    """``line`` with field ``name`` replaced; fixed-width values are space-padded or cut to the field width."""
    spec = _spec(specs, name)
    if spec.position is not None:
        start, end = spec.position
        width = end - start + 1
        return line[: start - 1] + value.ljust(width)[:width] + line[end:]
    parts = line.split(contract.delimiter.encode())
    parts[spec.index] = value
    return contract.delimiter.encode().join(parts)


def build_record(contract: Contract, specs: tuple[FieldSpec, ...], values: dict[str, str]) -> bytes:
    """A header or trailer record from text values by field name (fixed width: padded to the record)."""
    if contract.format == "delimited":
        ordered = sorted(specs, key=lambda s: s.index or 0)
        return contract.delimiter.join(values.get(s.name, "") for s in ordered).encode(ENCODING)
    line = b" " * (contract.record_length or 0)
    for spec in specs:
        line = set_field(contract, specs, line, spec.name, values.get(spec.name, "").encode(ENCODING))
    return line


def record_type(contract: Contract, line: bytes) -> bytes:
    return get_field(contract, contract.fields, line, "record_type")


def control_value(contract: Contract, line: bytes) -> int:
    """Signed integer value (implied decimals kept as units) a detail line adds to the control total."""
    spec = contract.field(contract.checks.control_total.sum_of or "")
    value = int(get_field(contract, contract.fields, line, spec.name))
    if spec.sign_field and get_field(contract, contract.fields, line, spec.sign_field).strip() == b"-":
        return -value
    return value


def count_and_total(contract: Contract, lines: list[bytes]) -> tuple[int, int]:
    """Detail record count and control total of already formatted lines (after an edit)."""
    detail = contract.record_types.detail.encode()
    details = [line for line in lines if record_type(contract, line) == detail]
    return len(details), sum(control_value(contract, line) for line in details)


def trailer_values(contract: Contract, count: int, total: int) -> dict[str, str]:
    """Trailer text: fixed width zero-pads to the field widths; delimited pads the total to 15 digits."""
    check = contract.checks
    values = {"record_type": contract.record_types.trailer}
    count_spec = _spec(contract.trailer, check.record_count.trailer_field)
    total_spec = _spec(contract.trailer, check.control_total.trailer_field)
    values[count_spec.name] = str(count).zfill(count_spec.width or 0)
    values[total_spec.name] = str(abs(total)).zfill(total_spec.width or 15)
    if check.control_total.sign_field:
        values[check.control_total.sign_field] = "-" if total < 0 else "+"
    elif total < 0:
        raise ValueError(f"{contract.feed}: negative control total without a sign field")
    return values
