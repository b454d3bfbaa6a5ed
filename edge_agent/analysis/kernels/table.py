"""The numba kernel that parses a block of a numeric text table (CSV, ``;``- or tab-separated exports).

It parses only what it can parse exactly as Python's ``float`` (and numpy's ``loadtxt``) would and refuses
everything else, so that the caller (``edge_agent.recordings.fast_table``) hands the block to the text parser,
which gives the values or names the error (file, line, column, cell):

* a cell is ``[+-]digits[.digits][(e|E)[+-]digits]`` (digits on at least one side of the point) or blank (NaN);
  any other byte (a space, a letter, ``nan``, ``inf``, a quote) refuses the block;
* a value is exact when its digits form an integer m < 2⁵³ and its decimal exponent e has |e| ≤ 22: m and 10^|e|
  are then exact doubles and one IEEE multiplication or division rounds correctly (Clinger 1990, "How to read
  floating point numbers accurately", the fast path of every correct ``strtod``). Other values refuse the block;
* a row has exactly ``n_cols`` cells and ends with LF or CRLF; a blank line refuses the block.

Like :mod:`edge_agent.analysis.kernels.steps` everything it calls lives in this module (numba's cache keys a
kernel on its own source); the ahead-of-time build exports it too (:mod:`edge_agent.analysis.kernels.aot`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: The exact powers of ten as doubles: 10^0 … 10^22 (10^23 is the first one a double cannot hold).
_POW10 = np.array([10.0**k for k in range(23)], dtype=np.float64)
#: The largest mantissa whose every integer a double holds exactly (2⁵³); above _M_LIMIT one more digit passes it.
_M_MAX = 1 << 53
_M_LIMIT = _M_MAX // 10
_LF, _CR, _PLUS, _MINUS, _POINT, _ZERO, _NINE, _E, _E_UP = 10, 13, 43, 45, 46, 48, 57, 101, 69


@njit(cache=True, nogil=True)
def parse_table(buf: np.ndarray, sep: int, skip: np.ndarray, out: np.ndarray) -> int:
    """Parse ``buf`` (uint8, whole lines) into ``out`` (float64[rows, n_cols]); ``skip`` (uint8[n_cols]) marks
    text columns, left NaN. Returns the number of rows parsed, or −1 − the row where the block is refused."""
    n = buf.size
    n_rows, n_cols = out.shape
    pow10 = _POW10
    i = 0
    row = 0
    while i < n:
        if row >= n_rows:
            return -1 - row
        if buf[i] == _LF or (buf[i] == _CR and i + 1 < n and buf[i + 1] == _LF):
            return -1 - row  # a blank line
        col = 0
        while True:
            if col >= n_cols:
                return -1 - row
            c = buf[i] if i < n else _LF
            if skip[col]:
                while i < n and buf[i] != sep and buf[i] != _LF and buf[i] != _CR:
                    i += 1
                out[row, col] = np.nan
            elif c in (sep, _LF, _CR):
                out[row, col] = np.nan  # a blank cell
            else:
                neg = False
                if c in (_MINUS, _PLUS):
                    neg = c == _MINUS
                    i += 1
                m = 0
                digits = 0
                frac = -1  # digits after the point, once there is one
                while i < n:
                    b = buf[i]
                    if _ZERO <= b <= _NINE:
                        if m > _M_LIMIT:
                            return -1 - row
                        m = m * 10 + (b - _ZERO)
                        digits += 1
                        if frac >= 0:
                            frac += 1
                    elif b == _POINT and frac < 0:
                        frac = 0
                    else:
                        break
                    i += 1
                frac = max(frac, 0)
                if digits == 0 or m > _M_MAX:
                    return -1 - row
                e = 0
                if i < n and (buf[i] == _E or buf[i] == _E_UP):
                    i += 1
                    e_neg = False
                    if i < n and (buf[i] == _MINUS or buf[i] == _PLUS):
                        e_neg = buf[i] == _MINUS
                        i += 1
                    e_digits = 0
                    while i < n and _ZERO <= buf[i] <= _NINE:
                        if e < 100_000:
                            e = e * 10 + (buf[i] - _ZERO)
                        i += 1
                        e_digits += 1
                    if e_digits == 0:
                        return -1 - row
                    if e_neg:
                        e = -e
                e -= frac
                v = float(m)
                if m != 0:
                    if e > 22 or e < -22:
                        return -1 - row
                    v = v * pow10[e] if e >= 0 else v / pow10[-e]
                out[row, col] = -v if neg else v
            c = buf[i] if i < n else _LF
            col += 1
            if c == sep:
                i += 1
                continue
            if c == _CR and i + 1 < n and buf[i + 1] == _LF:
                i += 1
                c = _LF
            if c != _LF or col != n_cols:
                return -1 - row
            i += 1
            break
        row += 1
    return row
