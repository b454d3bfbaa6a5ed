"""The per-step measurement record shared by the analysis, the aggregator, the CLI and the pipeline."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

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
    ``valr_band`` multipliers of the step's case and sampling rate (one tuple shared by many steps, so a
    step costs no more objects; :func:`edge_agent.analysis.loading_rate.step_bands`).
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
