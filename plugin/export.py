"""CSV that a spreadsheet opens as data, never as formulas (OWASP "CSV Injection").

Text in the export comes from devices (runner names, ids), so any cell could be hostile. Every field is quoted
(so a bare CR or LF inside a cell cannot start a new row in a lenient reader), and a text cell that would start
with a formula trigger (``= + - @``, tab, CR) — at its beginning or after any line break inside it — gets a
``'`` in front of that character. Numbers are written as numbers (a negative value stays a number).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: Where a formula trigger follows the start of the cell or a line break inside it (zero-width: ``"\\r=1"`` has
#: two such places, before the CR and before the ``=``).
_TRIGGER = re.compile(r"(?:^|(?<=[\r\n]))(?=[=+\-@\t\r])")


def neutralise(value: Any) -> Any:
    """``"=1+2"`` → ``"'=1+2"``, ``"a\\n=1+2"`` → ``"a\\n'=1+2"``, ``"\\r=1+2"`` → ``"'\\r'=1+2"``; other values as
    they are."""
    if not isinstance(value, str):
        return value
    return _TRIGGER.sub("'", value)


def rows_to_csv(rows: Iterable[Mapping[str, Any]], fieldnames: Sequence[str]) -> str:
    """CSV text with a header, every field quoted and every text cell neutralised."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fieldnames), lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: neutralise(row.get(k)) for k in fieldnames})
    return buf.getvalue()
