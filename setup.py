"""mdnet_tf: MDNet (large-time-step molecular dynamics with a GNN) in TensorFlow/DGL."""
import pathlib

import setuptools

HERE = pathlib.Path(__file__).parent


def _requirements():
  lines = (HERE / "requirements.txt").read_text().splitlines()
  return [l.strip() for l in lines if l.strip() and not l.startswith("#")]


setuptools.setup(
    name="mdnet_tf",
    version="0.1.0",
    description="MDNet: learning large-time-step molecular dynamics with GNNs "
    "(TensorFlow + DGL), LAMMPS ground truth, TF Serving roll-outs.",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    packages=setuptools.find_packages(include=["mdnet_tf", "mdnet_tf.*", "serving"]),
    install_requires=_requirements(),
    extras_require={"test": ["pytest", "pytest-xdist", "filelock"]},
)
