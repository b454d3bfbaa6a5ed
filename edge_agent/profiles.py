"""Hardware profiles: what an insole is (sensors, calibration, rate) and how its frames arrive.

Profiles live as YAML in ``hardware_profiles/`` (shipped inside the wheel as
``edge_agent/hardware_profiles``). They are validated strictly (``extra="forbid"``) and every
error names the file, the field and the offending value, so a maker editing a profile for a
home-built insole gets told exactly what is wrong.

Coordinates are insole-normalised: ``x`` runs from the heel (0) to the toe tip (1), ``y`` from
the medial edge (0) to the lateral edge (1). Left and right insoles share the same coordinates
(a right-foot profile is the mirror image of the left one, and medial/lateral already are).
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import yaml
from pydantic import ConfigDict, Field, ValidationError, model_validator

from edge_agent.common.config import ConfigError, StrictModel, format_validation_error, load_yaml

Region = Literal["heel", "midfoot", "forefoot", "toes"]
FootSide = Literal["left", "right"]
#: What the insole's cells measure. ``force``: load cells and force plates (unload as fast as the force);
#: ``capacitive``, ``fsr``, ``resistive``: pressure sensors, which unload slowly (docs/profiles.md).
SensorType = Literal["force", "capacitive", "fsr", "resistive"]


def _per_foot(left: int, right: int) -> dict[FootSide, int]:
    return {"left": left, "right": right}


#: Multiply a pressure in these units by an area in cm² to get newtons.
PRESSURE_TO_N_PER_CM2: dict[str, float] = {
    "N/cm2": 1.0,
    "kPa": 0.1,
    "MPa": 100.0,
    "psi": 0.689476,
}


class ProfileError(ConfigError):
    """A hardware profile could not be loaded; the message names file, field and value."""


class _Strict(StrictModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True, allow_inf_nan=False)


class Sensor(_Strict):
    """One sensing element of the insole."""

    x: float = Field(ge=0.0, le=1.0, title="Position heel→toe", description="0 = heel edge, 1 = toe tip.")
    y: float = Field(ge=0.0, le=1.0, title="Position medial→lateral", description="0 = medial, 1 = lateral.")
    area_cm2: float = Field(gt=0.0, title="Sensing area (cm²)", description="Used to turn pressure into force.")
    region: Region = Field(title="Anatomical region", description="heel, midfoot, forefoot or toes.")
    label: str | None = Field(default=None, title="Vendor label", description="E.g. 'L3' or 'cell 9'.")


class LinearCalibration(_Strict):
    """``N = (raw − offset) × gain`` per sensor.

    ``gain`` is derived from the unit when not given: a pressure unit times the sensor's area
    (e.g. N/cm² × cm²), or 1 for sensors that already report newtons.
    """

    type: Literal["linear"] = "linear"
    offset: float = Field(default=0.0, title="Raw offset", description="Raw reading at zero load.")
    gain: float | None = Field(
        default=None,
        title="Gain (N per raw unit)",
        description="Leave empty to derive it from the unit and the sensor area.",
    )


class FsrDividerCalibration(_Strict):
    """A force-sensing resistor in a voltage divider read by an ADC (the DIY insoles).

    Model (Interlink FSR 400-series integration guide): the ADC reads the voltage across the
    measuring resistor ``R_m`` with the FSR on the supply side, so
    ``V = counts / adc_max × vcc`` and the FSR conductance is ``G = V / (R_m × (vcc − V))``.
    Above its break force an FSR's conductance is close to a power law of force, so
    ``F = k × G^n`` (``G`` in µS). Readings at or below ``threshold_counts`` are 0 N.
    ``k`` and ``n`` come from a two-weight bench calibration (`footfall-agent calibrate`);
    the defaults fit the FSR 402 datasheet curve (≈1 N at 1.5 µS, ≈100 N at 70 µS).
    FSR hysteresis (up to ~28 %) and drift are handled downstream by the swing-phase re-zero.
    """

    type: Literal["fsr_divider"] = "fsr_divider"
    adc_max: int = Field(gt=0, title="ADC full scale (counts)", description="1023 for a 10-bit ADC.")
    vcc: float = Field(default=3.3, gt=0.0, title="Divider supply (V)")
    r_measure_ohm: float = Field(default=10_000.0, gt=0.0, title="Measuring resistor (Ω)")
    k: float = Field(default=0.754, gt=0.0, title="Force at 1 µS (N)")
    n: float = Field(default=1.19, gt=0.0, title="Power-law exponent")
    threshold_counts: int = Field(default=2, ge=0, title="Counts treated as no load")


Calibration = Annotated[LinearCalibration | FsrDividerCalibration, Field(discriminator="type")]

ChecksumKind = Literal["none", "xor8", "sum8", "crc16_ccitt"]
ValueType = Literal["u8", "u16le", "u16be", "i16le", "u32le", "f32le"]


class FrameFormat(_Strict):
    """Byte layout of one binary frame: ``sync | [side] | [counter] | [t_us] | values | [checksum]``.

    The checksum covers everything after the sync bytes and before the checksum itself.
    """

    sync: str = Field(default="", pattern=r"^([0-9A-Fa-f]{2})*$", title="Sync bytes (hex)")
    side_byte: bool = Field(default=False, title="Side byte", description="0 = left, 1 = right after sync.")
    counter: Literal["none", "u8", "u16le", "u32le"] = Field(default="u16le", title="Frame counter type")
    timestamp: Literal["none", "u32le_us", "u32le_ms"] = Field(default="none", title="Device timestamp")
    value_type: ValueType = Field(default="u16le", title="Sample type")
    checksum: ChecksumKind = Field(default="xor8", title="Checksum")

    @property
    def sync_bytes(self) -> bytes:
        return bytes.fromhex(self.sync)


class SerialTransport(_Strict):
    type: Literal["serial"] = "serial"
    baudrate: int = Field(default=921_600, gt=0, title="Baud rate")
    frame: FrameFormat = Field(default_factory=FrameFormat, title="Frame layout")


class BleTransport(_Strict):
    type: Literal["ble"] = "ble"
    service_uuid: str = Field(title="GATT service UUID")
    left_characteristic_uuid: str = Field(title="Notify characteristic, left insole")
    right_characteristic_uuid: str = Field(title="Notify characteristic, right insole")
    left_name: str | None = Field(default=None, title="Advertised name of the left insole")
    right_name: str | None = Field(default=None, title="Advertised name of the right insole")
    frame: FrameFormat = Field(default_factory=FrameFormat, title="Packet layout")


class AdcTransport(_Strict):
    type: Literal["adc"] = "adc"
    chip: Literal["mcp3008", "ads1115"] = Field(title="ADC chip")
    spi_bus: int = Field(default=0, ge=0, title="SPI bus (MCP3008)")
    spi_devices: dict[FootSide, int] = Field(
        default_factory=lambda: _per_foot(0, 1), title="SPI chip-select per foot (MCP3008)"
    )
    i2c_bus: int = Field(default=1, ge=0, title="I²C bus (ADS1115)")
    i2c_addresses: dict[FootSide, int] = Field(
        default_factory=lambda: _per_foot(0x48, 0x49), title="I²C address per foot (ADS1115)"
    )
    channels: list[int] = Field(title="ADC channel of sensor 1…N", min_length=1)
    spi_speed_hz: int = Field(default=1_350_000, gt=0, title="SPI clock (Hz)")


class FileTransport(_Strict):
    """Only recorded (vendor export, lab data): no live transport."""

    type: Literal["file"] = "file"


Transport = Annotated[SerialTransport | BleTransport | AdcTransport | FileTransport, Field(discriminator="type")]


class HardwareProfile(_Strict):
    """Everything the analysis needs to know about one insole model."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", title="Profile name", description="File stem.")
    description: str = Field(default="", title="Description")
    vendor: str = Field(default="", title="Vendor / maker")
    sample_rate_hz: float = Field(gt=0.0, le=10_000.0, title="Sample rate (Hz)")
    raw_unit: str = Field(
        title="Raw unit",
        description="'N/cm2', 'kPa', 'MPa', 'psi' (pressure × area), 'N' (force) or 'counts' (ADC).",
    )
    raw_max: float | None = Field(default=None, gt=0.0, title="Saturation value in raw units")
    sensor_type: SensorType = Field(
        title="Sensor type",
        description="force (load cells, force plates), capacitive, fsr or resistive (pressure insoles): "
        "sets the toe-off rule (docs/measures.md §2).",
    )
    sensors: list[Sensor] = Field(min_length=1, title="Sensors, in frame order")
    calibration: Calibration = Field(default_factory=LinearCalibration, title="Raw → newtons")
    insole_length_mm: float = Field(default=270.0, gt=0.0, title="Insole length (mm)", description="SI→mm.")
    transport: Transport = Field(default_factory=FileTransport, title="Live transport")
    source: str = Field(default="", title="Where the geometry comes from", description="Method and citation.")

    @model_validator(mode="after")
    def _check(self) -> HardwareProfile:
        if self.calibration.type == "linear":
            if self.raw_unit not in PRESSURE_TO_N_PER_CM2 and self.raw_unit not in ("N", "counts"):
                raise ValueError(f"raw_unit {self.raw_unit!r} is not one of N/cm2, kPa, MPa, psi, N, counts")
            if self.raw_unit == "counts" and self.calibration.gain is None:
                raise ValueError("raw_unit 'counts' with a linear calibration needs an explicit gain")
        elif self.raw_unit != "counts":
            raise ValueError(f"fsr_divider calibration needs raw_unit 'counts', not {self.raw_unit!r}")
        if isinstance(self.transport, AdcTransport) and len(self.transport.channels) != len(self.sensors):
            raise ValueError(
                f"transport.channels lists {len(self.transport.channels)} channels for {len(self.sensors)} sensors"
            )
        return self

    # -- derived arrays (contiguous, what the kernels consume) -------------------------------
    @property
    def n_sensors(self) -> int:
        return len(self.sensors)

    def sensor_x(self) -> np.ndarray:
        return np.ascontiguousarray([s.x for s in self.sensors], dtype=np.float64)

    def sensor_y(self) -> np.ndarray:
        return np.ascontiguousarray([s.y for s in self.sensors], dtype=np.float64)

    def sensor_area_cm2(self) -> np.ndarray:
        return np.ascontiguousarray([s.area_cm2 for s in self.sensors], dtype=np.float64)

    def linear_gain(self) -> np.ndarray:
        """Per-sensor N per raw unit for a linear calibration."""
        cal = self.calibration
        if not isinstance(cal, LinearCalibration):
            raise TypeError("linear_gain() only applies to linear calibrations")
        if cal.gain is not None:
            return np.full(self.n_sensors, cal.gain, dtype=np.float64)
        if self.raw_unit == "N":
            return np.ones(self.n_sensors, dtype=np.float64)
        return self.sensor_area_cm2() * PRESSURE_TO_N_PER_CM2[self.raw_unit]

    def region_index(self) -> np.ndarray:
        """Region per sensor as 0 heel, 1 midfoot, 2 forefoot, 3 toes."""
        order = {"heel": 0, "midfoot": 1, "forefoot": 2, "toes": 3}
        return np.asarray([order[s.region] for s in self.sensors], dtype=np.int8)

    @property
    def is_single_zone(self) -> bool:
        """One channel per foot: force is measured, the centre of pressure is not."""
        return self.n_sensors == 1


def profiles_dir() -> Path:
    """The folder with the bundled profiles (repo checkout first, then the wheel's copy)."""
    repo = Path(__file__).resolve().parent.parent / "hardware_profiles"
    if repo.is_dir():
        return repo
    return Path(__file__).resolve().parent / "hardware_profiles"


def parse_profile(data: object, origin: Path | str = "<memory>", root: yaml.Node | None = None) -> HardwareProfile:
    """Validate a profile mapping; errors name the origin, the field, the value and (from a file) the line."""
    if not isinstance(data, dict):
        raise ProfileError(f"{origin}: a hardware profile must be a mapping, got {type(data).__name__}")
    try:
        return HardwareProfile.model_validate(data)
    except ValidationError as err:
        raise ProfileError(format_validation_error(err, str(origin), root, what="hardware profile")) from None


def load_profile_file(path: Path | str) -> HardwareProfile:
    path = Path(path)
    try:
        doc = load_yaml(path, what="hardware profile", allow_empty=False)
    except ConfigError as err:
        raise ProfileError(str(err)) from None
    profile = parse_profile(doc.data, path, doc.root)
    if profile.name != path.stem:
        raise ProfileError(f"{path}: field 'name': {profile.name!r} must match the file name {path.stem!r}")
    return profile


@cache
def _bundled(name: str) -> HardwareProfile:
    path = profiles_dir() / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(list_profiles()) or "none"
        raise ProfileError(f"unknown hardware profile {name!r} (known: {known})")
    return load_profile_file(path)


def load_profile(name_or_path: str | Path) -> HardwareProfile:
    """A bundled profile by name (``moticon-opengo``) or any YAML file by path."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.is_file():
        return load_profile_file(p)
    return _bundled(str(name_or_path))


def list_profiles() -> list[str]:
    return sorted(p.stem for p in profiles_dir().glob("*.yaml"))


def grid_sensors(rows: int, cols: int, pitch_mm: float, length_mm: float, width_mm: float) -> list[Sensor]:
    """Sensels of a rectangular grid clipped to an insole outline (for high-resolution mats)."""
    sensors: list[Sensor] = []
    area = (pitch_mm / 10.0) ** 2
    for r in range(rows):
        x = (r + 0.5) / rows
        half = 0.5 * insole_width_fraction(x)
        for c in range(cols):
            y = (c + 0.5) / cols
            if abs(y - 0.5) > half:
                continue
            sensors.append(Sensor(x=round(x, 5), y=round(y, 5), area_cm2=area, region=region_of(x)))
    return sensors


def region_of(x: float) -> Region:
    """Region boundaries along the foot used by generated profiles (Pedar's mask proportions)."""
    if x < 0.27:
        return "heel"
    if x < 0.55:
        return "midfoot"
    if x < 0.8:
        return "forefoot"
    return "toes"


def insole_width_fraction(x: float) -> float:
    """Insole width at heel→toe position x, as a fraction of the widest point (forefoot).

    A smooth outline (heel ≈ 0.68, arch ≈ 0.62, forefoot 1.0, rounded toe) used for drawing the
    insole in the dashboard and for clipping generated grids.
    """
    x = min(max(x, 0.0), 1.0)
    heel = 0.68 * math.sqrt(max(0.0, 1.0 - ((0.12 - min(x, 0.12)) / 0.12) ** 2))
    if x < 0.12:
        return heel
    if x < 0.45:
        return 0.68 - 0.06 * math.sin(math.pi * (x - 0.12) / 0.33)
    if x < 0.72:
        return 0.68 + 0.32 * math.sin(0.5 * math.pi * (x - 0.45) / 0.27)
    tip = (x - 0.72) / 0.28
    return max(0.0, math.sqrt(max(0.0, 1.0 - tip**2)))
