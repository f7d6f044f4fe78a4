"""Data-generation presets: the paper's protocol and smaller versions of it.

Every preset runs the same protocol (paper Section 4, "Dataset"): random
initial positions of `num_atoms` atoms at `density`, NPT at 80 K and 1 bar
(Nosé–Hoover thermostat and barostat), NVT at 80 K, then NVE; only the NVE stage
is used. Frames are dumped every `dump_every_fs` during NVE; `frames_per_trajectory`
start times are drawn from them, each with targets at t + Δt for every Δt in
`dts_fs`. The species (mass) and its LJ potential default to the paper's argon
and can be overridden (`get(name, mass_amu=..., lj_epsilon=...)`). One extra long NVT trajectory (`rollout_steps`, dumped every
`rollout_dump_every_fs`) validates roll-outs (RDF, MSD).
"""

import dataclasses
import json

from mdnet_tf import units


@dataclasses.dataclass(frozen=True)
class Preset:
  name: str
  num_atoms: int
  npt_steps: int
  nvt_steps: int
  nve_steps: int
  rollout_steps: int
  split: tuple = (15, 3, 2)            # train, test, validation trajectories
  frames_per_trajectory: int = 10
  dts_fs: tuple = (16, 32, 64, 128)
  timestep_fs: float = 1.0
  temperature: float = 80.0            # K
  pressure_bar: float = 1.0
  thermostat_damp_fs: float = 100.0    # Nosé–Hoover Tdamp (100 time steps)
  barostat_damp_fs: float = 1000.0     # Nosé–Hoover Pdamp (1000 time steps)
  density: float = units.ARGON_DENSITY  # atoms/Å³ of the random start
  min_distance: float = 2.8            # Å, no overlaps in the random start
  dump_every_fs: int = 16
  rollout_dump_every_fs: int = 128
  # The species and its potential (the paper's argon unless overridden).
  mass_amu: float = units.ARGON_MASS   # g/mol
  lj_epsilon: float = units.ARGON_EPSILON  # kcal/mol
  lj_sigma: float = units.ARGON_SIGMA  # Å
  cutoff: float = units.ARGON_CUTOFF   # Å (LJ cutoff and MDNet's graph radius)

  @property
  def num_trajectories(self):
    return sum(self.split)

  def to_json(self):
    """A JSON-normal dict (tuples as lists), equal to its own JSON round trip."""
    return json.loads(json.dumps(dataclasses.asdict(self)))

  def matches(self, recorded):
    """Whether a recorded to_json() describes this preset (fields added since
    the record was written count with their defaults)."""
    fields = {f.name: f.default for f in dataclasses.fields(Preset)
              if f.default is not dataclasses.MISSING}
    filled = json.loads(json.dumps({**fields, **recorded}))
    return filled == self.to_json()


PRESETS = {
    # Exactly the paper: 4000 atoms, 20000 + 20000 + 2560 steps, 20 trajectories.
    "paper": Preset("paper", num_atoms=4000, npt_steps=20000, nvt_steps=20000,
                    nve_steps=2560, rollout_steps=40960),
    # Default: the paper's protocol and stage lengths with 864 atoms (box ≈ 36 Å,
    # > 4 cutoffs, so MDNet's 2 r_c receptive field fits); about 2 min on 2 cores.
    "small": Preset("small", num_atoms=864, npt_steps=20000, nvt_steps=20000,
                    nve_steps=2560, rollout_steps=40960),
    # Transfer to larger systems: only the long NVT roll-out reference (no
    # training pairs), 32000 atoms (box ≈ 121 Å); about 15 min on one core.
    "large": Preset("large", num_atoms=32000, npt_steps=20000, nvt_steps=20000,
                    nve_steps=2560, rollout_steps=40960, split=(0, 0, 0)),
    # Seconds: for tests and the demo.
    "smoke": Preset("smoke", num_atoms=256, npt_steps=1000, nvt_steps=1000,
                    nve_steps=512, rollout_steps=1024, split=(2, 1, 1),
                    frames_per_trajectory=3),
}


OVERRIDABLE = ("mass_amu", "lj_epsilon", "lj_sigma", "cutoff", "temperature", "density")


def get(name, **overrides):
  """The preset called `name` with `overrides` of OVERRIDABLE fields (None
  values are ignored), or a clear error."""
  try:
    preset = PRESETS[name]
  except KeyError:
    raise ValueError(f"unknown preset {name!r}; known presets: "
                     f"{', '.join(sorted(PRESETS))}") from None
  overrides = {k: v for k, v in overrides.items() if v is not None}
  unknown = sorted(set(overrides) - set(OVERRIDABLE))
  if unknown:
    raise ValueError(f"cannot override {unknown}; overridable: {', '.join(OVERRIDABLE)}")
  bad = [k for k, v in overrides.items() if not float(v) > 0]
  if bad:
    raise ValueError(f"{', '.join(bad)} must be positive")
  return dataclasses.replace(preset, **{k: float(v) for k, v in overrides.items()})
