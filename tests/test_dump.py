"""LAMMPS dump reader/writer: round trip, image flags, errors that name the line."""

import numpy as np
import pytest

from mdnet_tf import errors
from mdnet_tf.data import dump

HEADER = """ITEM: TIMESTEP
{step}
ITEM: NUMBER OF ATOMS
{n}
ITEM: BOX BOUNDS pp pp pp
-1.0 19.0
0.0 20.0
0.0 25.0
ITEM: ATOMS {cols}
"""


def _write(path, text):
  path.write_text(text)
  return str(path)


def test_round_trip(tmp_path):
  rng = np.random.default_rng(0)
  frames = [dict(timestep=t, box=np.array([20.0, 21.0, 22.0]), box_lo=np.zeros(3),
                 positions=rng.uniform(-30, 50, (7, 3)),
                 velocities=rng.normal(0, 1e-3, (7, 3))) for t in (0, 16)]
  path = str(tmp_path / "a.dump")
  dump.write_dump(path, frames)
  back = dump.read_dump(path)
  assert [f.timestep for f in back] == [0, 16]
  for a, b in zip(frames, back):
    np.testing.assert_allclose(b.positions, a["positions"], rtol=1e-11)
    np.testing.assert_allclose(b.velocities, a["velocities"], rtol=1e-11)
    np.testing.assert_allclose(b.box, a["box"])
    assert b.unwrapped


def test_image_flags_are_unwrapped_and_ids_sorted(tmp_path):
  text = HEADER.format(step=5, n=2, cols="id type x y z ix iy iz vx vy vz") + (
      "2 1 1.0 2.0 3.0 -1 0 2 0.1 0.2 0.3\n"
      "1 1 4.0 5.0 6.0 0 1 0 0.4 0.5 0.6\n")
  (frame,) = dump.read_dump(_write(tmp_path / "img.dump", text))
  np.testing.assert_array_equal(frame.ids, [1, 2])
  np.testing.assert_allclose(frame.box, [20.0, 20.0, 25.0])
  np.testing.assert_allclose(frame.positions, [[4.0, 25.0, 6.0], [-19.0, 2.0, 53.0]])
  np.testing.assert_allclose(frame.velocities, [[0.4, 0.5, 0.6], [0.1, 0.2, 0.3]])
  assert frame.unwrapped


def test_wrapped_without_images_and_no_velocities(tmp_path):
  text = HEADER.format(step=0, n=1, cols="id type xs ys zs") + "1 1 0.5 0.5 0.2\n"
  (frame,) = dump.read_dump(_write(tmp_path / "s.dump", text))
  np.testing.assert_allclose(frame.positions, [[9.0, 10.0, 5.0]])
  assert frame.velocities is None and not frame.unwrapped


@pytest.mark.parametrize("body,match", [
    # truncated: 3 atoms announced, 2 present
    (HEADER.format(step=0, n=3, cols="id type xu yu zu") + "1 1 0 0 0\n2 1 1 1 1\n",
     r"t\.dump:12: file ends early \(truncated\?\): 2 of 3 atom lines"),
    (HEADER.format(step=0, n=2, cols="id type xu yu zu") + "1 1 0 0 0\n2 1 1 1\n",
     r"t\.dump:11: expected 5 columns"),
    (HEADER.format(step=0, n=2, cols="id type xu yu zu") + "1 1 0 0 0\n2 1 a 1 1\n",
     r"t\.dump:11: non-numeric"),
    (HEADER.format(step=0, n=1, cols="id type xu yu zu") + "1 1 0 nan 0\n",
     r"t\.dump:10: non-finite"),
    ("ITEM: TIMESTEP\n0\nITEM: NUMBER OF ATOMS\n", r"t\.dump:4: file ends early"),
    ("ITEM: TIMESTEP\nzero\n", r"t\.dump:2: expected a timestep"),
    (HEADER.format(step=0, n=1, cols="id type vx vy vz") + "1 1 0 0 0\n",
     r"t\.dump:9: no position columns"),
    ("", r"t\.dump:1: no frames"),
    (HEADER.format(step=0, n=1, cols="id type xu yu zu").replace(
        "BOX BOUNDS pp pp pp", "BOX BOUNDS xy xz yz pp pp pp") + "1 1 0 0 0\n",
     "triclinic"),
])
def test_malformed_files_name_file_and_line(tmp_path, body, match):
  with pytest.raises(errors.DumpFormatError, match=match):
    dump.read_dump(_write(tmp_path / "t.dump", body))


def test_reads_lammps_dump_bytes_truncated_midway(smoke_dir, tmp_path):
  """A real LAMMPS dump cut in the middle of a frame reports the truncation."""
  import glob  # pylint: disable=import-outside-toplevel
  source = sorted(glob.glob(f"{smoke_dir}/trajectories/traj_*/nve.dump"))[0]
  data = open(source).read()
  cut = tmp_path / "cut.dump"
  cut.write_text(data[: len(data) // 2 - 7])
  with pytest.raises(errors.DumpFormatError, match=r"cut\.dump:\d+: "):
    dump.read_dump(str(cut))
