"""FIT files read back with Garmin's own decoder (``garmin-fit-sdk``), independent of the encoder (fit-tool).

:func:`decode` fails the test unless the file is FIT, its CRCs check, and the decoder reports no error. Values come
back scaled (stance time in ms, balance in %), date_time fields as aware UTC datetimes, and developer fields keyed
by the decoder's field-description key, which :class:`DecodedFit` maps back to names per message type.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from garmin_fit_sdk import Decoder, Stream

#: FIT resolutions of the native fields the export writes: cadence (strides/min) in 1/128, so spm in 1/64;
#: stance time 0.1 ms; stance-time balance 0.01 %. Half a step of each is the largest rounding error.
SPM_TOL = 1.0 / 64 / 2 + 1e-9
STANCE_MS_TOL = 0.05 + 1e-9
BALANCE_TOL = 0.005 + 1e-9
#: Developer fields are float32: relative precision 2^-24.
FLOAT32_REL = 1e-6

_MESG_NUMS = {"record": 20, "lap": 19, "session": 18}


@dataclass
class DecodedFit:
    messages: dict[str, list[dict[str, Any]]]

    def count(self, kind: str) -> int:
        return len(self.messages.get(f"{kind}_mesgs", []))

    def one(self, kind: str) -> dict[str, Any]:
        (msg,) = self.messages[f"{kind}_mesgs"]
        return msg

    @property
    def records(self) -> list[dict[str, Any]]:
        return self.messages.get("record_mesgs", [])

    def developer_names(self, kind: str) -> dict[int, str]:
        """Decoder key → field name of the developer fields described for ``kind`` (record, lap, session)."""
        return {
            d["key"]: d["field_name"]
            for d in self.messages.get("field_description_mesgs", [])
            if d.get("native_mesg_num") == _MESG_NUMS[kind]
        }

    def developer(self, kind: str, msg: dict[str, Any]) -> dict[str, float]:
        """The developer fields of one decoded message, by name."""
        names = self.developer_names(kind)
        return {names[k]: v for k, v in (msg.get("developer_fields") or {}).items() if k in names}


def decode(data: bytes) -> DecodedFit:
    """Garmin's decoder: is_fit, check_integrity (header and file CRC), then read with no errors."""
    assert Decoder(Stream.from_byte_array(bytearray(data))).is_fit(), "not a FIT file"
    assert Decoder(Stream.from_byte_array(bytearray(data))).check_integrity(), "FIT CRC or size check failed"
    messages, errors = Decoder(Stream.from_byte_array(bytearray(data))).read()
    assert errors == [], errors
    return DecodedFit(cast(dict[str, list[dict[str, Any]]], messages))


def spm(msg: dict[str, Any], prefix: str = "") -> float | None:
    """Steps/min of both feet from a decoded record (or lap/session with ``prefix`` "avg_"/"max_")."""
    whole = msg.get(f"{prefix}cadence")
    if whole is None:
        return None
    return 2.0 * (whole + (msg.get(f"{prefix}fractional_cadence") or 0.0))


def unix(dt: datetime) -> int:
    """A decoded FIT date_time as whole Unix seconds."""
    assert dt.tzinfo is not None
    return int(dt.astimezone(UTC).timestamp())
