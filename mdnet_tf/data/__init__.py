"""Ground-truth data: LAMMPS driver, presets, dump reader/writer, frame-pair datasets."""
