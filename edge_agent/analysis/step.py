"""The per-step measurement record shared by the analysis, the aggregator, the CLI and the pipeline (:class:`Step`),
and its columnar form (:class:`StepTable`), which the analysis produces and the aggregator and the report read."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from operator import attrgetter
from typing import Any, Literal, overload

import numpy as np

Side = Literal["left", "right"]
StrikeZone = Literal["rearfoot", "midfoot", "forefoot"]
LrModel = Literal["sampled", "rise", "rise_prior"]

#: Strike-index zone boundaries (Cavanagh & Lafortune 1980): rearfoot < 1/3 ≤ midfoot ≤ 2/3 < forefoot.
REARFOOT_MAX = 1.0 / 3.0
FOREFOOT_MIN = 2.0 / 3.0
#: Moticon CoP error in running ≈ 18 mm (Morin 2022) ≈ ±0.07 of foot length: steps whose strike
#: index lies this close to a zone boundary are flagged ``zone_uncertain``.
ZONE_UNCERTAINTY = 0.07


def strike_zone(si: float) -> StrikeZone:
    if si < REARFOOT_MAX:
        return "rearfoot"
    if si > FOREFOOT_MIN:
        return "forefoot"
    return "midfoot"


def zone_uncertain(si: float) -> bool:
    return abs(si - REARFOOT_MAX) < ZONE_UNCERTAINTY or abs(si - FOREFOOT_MIN) < ZONE_UNCERTAINTY


@dataclass(slots=True)
class Step:
    """One foot contact, from initial contact to toe-off.

    Times are seconds on the recording's (or device's) clock. Forces are in body weights (BW).
    ``strike_index`` is None for single-zone insoles (no centre of pressure).
    ``lr_method`` says which rise VALR/VILR measure: ``impact_peak`` (20–80 % of the vertical
    impact peak) or ``fallback`` (no impact peak: 20–80 % of the force at 13 % of stance).
    ``lr_model`` says how: ``sampled`` (the samples alone), ``rise`` (scaled by ``lr_correction``, the
    sampling loss of a raised-cosine rise fitted to the samples) or ``rise_prior`` (the same with the
    prior rise time: no sample on the rise). ``valr_sampled_bw_s`` is the uncorrected value;
    ``valr_lo_bw_s``/``valr_hi_bw_s`` the 90 % interval (docs/measures.md §3): ``valr_bw_s`` times the
    ``valr_band`` multipliers of the step's case and sampling rate
    (:func:`edge_agent.analysis.loading_rate.step_band_columns`).
    """

    side: Side
    t_contact: float
    t_toe_off: float
    contact_ms: float
    strike_index: float | None
    strike_zone: StrikeZone | None
    zone_uncertain: bool
    impact_peak: bool
    valr_bw_s: float | None
    vilr_bw_s: float | None
    lr_method: Literal["impact_peak", "fallback"]
    lr_low_confidence: bool
    peak_force_bw: float
    impulse_bw_s: float
    cop_x: float | None = None
    cop_y: float | None = None
    cop_path: float | None = None
    cop_ml_excursion: float | None = None
    flight_ms: float | None = None
    impact_peak_bw: float | None = None
    lr_model: LrModel = "sampled"
    valr_sampled_bw_s: float | None = None
    valr_band: tuple[float, float] | None = None

    @property
    def valr_lo_bw_s(self) -> float | None:
        """Lower bound of the 90 % interval of ``valr_bw_s`` (BW/s)."""
        v, band = self.valr_bw_s, self.valr_band
        return None if v is None or band is None else v * band[0]

    @property
    def valr_hi_bw_s(self) -> float | None:
        """Upper bound of the 90 % interval of ``valr_bw_s`` (BW/s)."""
        v, band = self.valr_bw_s, self.valr_band
        return None if v is None or band is None else v * band[1]

    @property
    def lr_correction(self) -> float:
        """The factor the rise correction applied to VALR (1 when none)."""
        v, vs = self.valr_bw_s, self.valr_sampled_bw_s
        return v / vs if v is not None and vs and self.lr_model != "sampled" else 1.0

    def to_dict(self) -> dict[str, Any]:
        """The fields, with the interval bounds in place of ``valr_band``."""
        d = asdict(self)
        del d["valr_band"]
        d["valr_lo_bw_s"], d["valr_hi_bw_s"] = self.valr_lo_bw_s, self.valr_hi_bw_s
        return d


#: The keys of :meth:`Step.to_dict`, in order (the columns of ``analyze --format csv``).
STEP_KEYS: tuple[str, ...] = (
    *(f.name for f in fields(Step) if f.name != "valr_band"),
    "valr_lo_bw_s",
    "valr_hi_bw_s",
)


# -- the columnar form ------------------------------------------------------------------------------------------------
SIDES: tuple[Side, Side] = ("left", "right")
ZONES: tuple[StrikeZone, StrikeZone, StrikeZone] = ("rearfoot", "midfoot", "forefoot")
LR_MODELS: tuple[LrModel, LrModel, LrModel] = ("sampled", "rise", "rise_prior")
#: The columns of a :class:`StepTable` and their dtypes. Codes: ``side`` indexes :data:`SIDES`, ``zone``
#: :data:`ZONES` (−1: none), ``lr_model`` :data:`LR_MODELS`; ``lr_impact``: ``lr_method == "impact_peak"``;
#: ``band_lo``/``band_hi``: ``valr_band``; NaN in a float column is a ``None`` field.
COLUMNS: dict[str, str] = {
    "side": "i1",
    "t_contact": "f8",
    "t_toe_off": "f8",
    "contact_ms": "f8",
    "strike_index": "f8",
    "zone": "i1",
    "zone_uncertain": "?",
    "impact_peak": "?",
    "valr_bw_s": "f8",
    "vilr_bw_s": "f8",
    "lr_impact": "?",
    "lr_low_confidence": "?",
    "peak_force_bw": "f8",
    "impulse_bw_s": "f8",
    "cop_x": "f8",
    "cop_y": "f8",
    "cop_path": "f8",
    "cop_ml_excursion": "f8",
    "flight_ms": "f8",
    "impact_peak_bw": "f8",
    "lr_model": "i1",
    "valr_sampled_bw_s": "f8",
    "band_lo": "f8",
    "band_hi": "f8",
}
#: The keys of :data:`STEP_KEYS` whose values are floats (or None).
FLOAT_KEYS: tuple[str, ...] = tuple(
    k for k in STEP_KEYS if k in ("valr_lo_bw_s", "valr_hi_bw_s") or COLUMNS.get(k) == "f8"
)
#: Float columns that are plain :class:`Step` fields of the same name (NaN ↔ None where the field is optional).
_OPTIONAL_FLOATS = (
    "strike_index",
    "valr_bw_s",
    "vilr_bw_s",
    "cop_x",
    "cop_y",
    "cop_path",
    "cop_ml_excursion",
    "flight_ms",
    "impact_peak_bw",
    "valr_sampled_bw_s",
)


def none_where_nan(col: np.ndarray) -> list[float | None]:
    """Column → list with None for NaN (one C-level pass instead of a test per element in Python)."""
    nan = np.isnan(col)
    if not nan.any():
        return col.tolist()
    obj = col.astype(object)
    obj[nan] = None
    return obj.tolist()


class StepTable(Sequence[Step]):
    """Steps as columns (:data:`COLUMNS`, one numpy array each): what the analysis produces and the aggregator and
    the ``analyze`` report read. :class:`Step` records are built only for a consumer that wants them
    (:meth:`to_steps`, iteration, indexing); they equal the records the columns were made from, field by field."""

    __slots__ = ("cols",)

    def __init__(self, cols: dict[str, np.ndarray]) -> None:
        self.cols = cols

    @classmethod
    def empty(cls) -> StepTable:
        return cls({k: np.empty(0, dtype=dt) for k, dt in COLUMNS.items()})

    @classmethod
    def concat(cls, parts: Sequence[StepTable]) -> StepTable:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        return cls({k: np.concatenate([p.cols[k] for p in parts]) for k in COLUMNS})

    @classmethod
    def from_steps(cls, steps: Iterable[Step]) -> StepTable:
        """The columns of Step records (any order; kept)."""
        steps = list(steps)
        if not steps:
            return cls.empty()

        def floats(name: str) -> np.ndarray:
            return np.array([math.nan if v is None else v for v in map(attrgetter(name), steps)], dtype=np.float64)

        zone: dict[str | None, int] = {None: -1, **{z: k for k, z in enumerate(ZONES)}}
        bands = [s.valr_band or (math.nan, math.nan) for s in steps]
        cols = {
            "side": np.array([s.side == "right" for s in steps], dtype=np.int8),
            "t_contact": floats("t_contact"),
            "t_toe_off": floats("t_toe_off"),
            "contact_ms": floats("contact_ms"),
            "zone": np.array([zone[s.strike_zone] for s in steps], dtype=np.int8),
            "zone_uncertain": np.array([s.zone_uncertain for s in steps], dtype=bool),
            "impact_peak": np.array([s.impact_peak for s in steps], dtype=bool),
            "lr_impact": np.array([s.lr_method == "impact_peak" for s in steps], dtype=bool),
            "lr_low_confidence": np.array([s.lr_low_confidence for s in steps], dtype=bool),
            "peak_force_bw": floats("peak_force_bw"),
            "impulse_bw_s": floats("impulse_bw_s"),
            "lr_model": np.array([LR_MODELS.index(s.lr_model) for s in steps], dtype=np.int8),
            "band_lo": np.array([b[0] for b in bands], dtype=np.float64),
            "band_hi": np.array([b[1] for b in bands], dtype=np.float64),
        }
        cols.update({k: floats(k) for k in _OPTIONAL_FLOATS})
        return cls({k: cols[k] for k in COLUMNS})

    def __len__(self) -> int:
        return len(self.cols["t_contact"])

    @overload
    def __getitem__(self, key: int) -> Step: ...

    @overload
    def __getitem__(self, key: slice | np.ndarray) -> StepTable: ...

    def __getitem__(self, key: Any) -> Any:
        """``table[i]``: one :class:`Step`; ``table[a:b]`` or an index array / mask: a :class:`StepTable`."""
        if isinstance(key, int | np.integer):
            n = len(self)
            if not -n <= key < n:
                raise IndexError(f"step {key} of {n}")
            return self.take(slice(key, key + 1 if key != -1 else None)).to_steps()[0]
        return self.take(key)

    def __iter__(self) -> Iterator[Step]:
        return iter(self.to_steps())

    def take(self, index: Any) -> StepTable:
        return StepTable({k: v[index] for k, v in self.cols.items()})

    def sorted_by_contact(self) -> StepTable:
        """Ordered by initial contact, ties in their present order (as ``sorted(steps, key=t_contact)``)."""
        t = self.cols["t_contact"]
        if len(t) < 2 or bool(np.all(t[1:] >= t[:-1])):
            return self
        return self.take(np.argsort(t, kind="stable"))

    def side(self, side: Side) -> StepTable:
        return self.take(self.cols["side"] == SIDES.index(side))

    def floats(self, name: str) -> np.ndarray:
        """A float column with its NaN (None) left out."""
        v = self.cols[name]
        return v[~np.isnan(v)]

    @property
    def valr_lo_bw_s(self) -> np.ndarray:
        return self.cols["valr_bw_s"] * self.cols["band_lo"]

    @property
    def valr_hi_bw_s(self) -> np.ndarray:
        return self.cols["valr_bw_s"] * self.cols["band_hi"]

    @property
    def lr_correction(self) -> np.ndarray:
        """:attr:`Step.lr_correction` of each step."""
        v, vs = self.cols["valr_bw_s"], self.cols["valr_sampled_bw_s"]
        use = ~np.isnan(v) & ~np.isnan(vs) & (vs != 0) & (self.cols["lr_model"] != 0)
        out = np.ones(len(v))
        out[use] = v[use] / vs[use]
        return out

    def lr_models(self) -> list[LrModel]:
        return [LR_MODELS[k] for k in self.cols["lr_model"].tolist()]

    def to_steps(self) -> list[Step]:
        """The :class:`Step` records, in table order."""
        c = self.cols
        if not len(self):
            return []
        zone: list[StrikeZone | None] = [None if k < 0 else ZONES[k] for k in c["zone"].tolist()]
        lo, hi = c["band_lo"], c["band_hi"]
        bands = [None if math.isnan(a) else (a, b) for a, b in zip(lo.tolist(), hi.tolist(), strict=True)]
        return list(
            map(
                Step,
                [SIDES[k] for k in c["side"].tolist()],
                c["t_contact"].tolist(),
                c["t_toe_off"].tolist(),
                c["contact_ms"].tolist(),
                none_where_nan(c["strike_index"]),
                zone,
                c["zone_uncertain"].tolist(),
                c["impact_peak"].tolist(),
                none_where_nan(c["valr_bw_s"]),
                none_where_nan(c["vilr_bw_s"]),
                ["impact_peak" if x else "fallback" for x in c["lr_impact"].tolist()],
                c["lr_low_confidence"].tolist(),
                c["peak_force_bw"].tolist(),
                c["impulse_bw_s"].tolist(),
                none_where_nan(c["cop_x"]),
                none_where_nan(c["cop_y"]),
                none_where_nan(c["cop_path"]),
                none_where_nan(c["cop_ml_excursion"]),
                none_where_nan(c["flight_ms"]),
                none_where_nan(c["impact_peak_bw"]),
                self.lr_models(),
                none_where_nan(c["valr_sampled_bw_s"]),
                bands,
            )
        )

    def to_columns(self) -> dict[str, list[Any]]:
        """The :meth:`Step.to_dict` fields (:data:`STEP_KEYS`) as lists: Python values, None for a missing one."""
        c = self.cols
        out: dict[str, list[Any]] = {
            "side": [SIDES[k] for k in c["side"].tolist()],
            "t_contact": c["t_contact"].tolist(),
            "t_toe_off": c["t_toe_off"].tolist(),
            "contact_ms": c["contact_ms"].tolist(),
            "strike_zone": [None if k < 0 else ZONES[k] for k in c["zone"].tolist()],
            "zone_uncertain": c["zone_uncertain"].tolist(),
            "impact_peak": c["impact_peak"].tolist(),
            "lr_method": ["impact_peak" if x else "fallback" for x in c["lr_impact"].tolist()],
            "lr_low_confidence": c["lr_low_confidence"].tolist(),
            "peak_force_bw": c["peak_force_bw"].tolist(),
            "impulse_bw_s": c["impulse_bw_s"].tolist(),
            "lr_model": self.lr_models(),
            "valr_lo_bw_s": none_where_nan(self.valr_lo_bw_s),
            "valr_hi_bw_s": none_where_nan(self.valr_hi_bw_s),
        }
        out.update({k: none_where_nan(c[k]) for k in _OPTIONAL_FLOATS})
        return {k: out[k] for k in STEP_KEYS}
