"""CSV, TSV and PSV bodies: a list of row objects keyed by the header row, every value a string.

Quoting per RFC 4180 (the standard library's C reader, one linear pass). Blank lines are
skipped; a short row leaves its missing columns out (as Jackson does); a row with extra
non-empty fields is an error. Every field counts against the expansion limit.
"""

from __future__ import annotations

import csv
import io

from .common import Budget, FormatError

SEPARATORS = {"csv": ",", "tsv": "\t", "psv": "|"}

# The csv module refuses fields over 131,072 characters by default, a process-wide setting. The
# upstream body limit already bounds a field, so the module's own bound is lifted once, here.
if csv.field_size_limit() < 2**31 - 1:
    csv.field_size_limit(2**31 - 1)


def decode_delimited(label: str, budget: Budget, text: str) -> list[dict[str, str]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=SEPARATORS[label])
    try:
        header = next((row for row in reader if row), None)
        if header is None:
            return []
        budget.spend(len(header))
        width = len(header)
        rows = []
        for row in reader:
            if not row:
                continue
            if len(row) > width and any(row[width:]):
                raise FormatError(f"{label}: line {reader.line_num} has {len(row)} fields but the header has {width}")
            budget.spend(1 + min(len(row), width))
            rows.append(dict(zip(header, row, strict=False)))  # a short row lacks its last fields
        return rows
    except csv.Error as exc:
        raise FormatError(f"{label}: {exc} (line {reader.line_num})") from None
