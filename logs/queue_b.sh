#!/bin/bash
# Core B: after the 32000-atom LAMMPS reference, the 1 ns stability study.
cd /work/main
while [ ! -f data/large/manifest.json ]; do sleep 30; done
.venv/bin/python launch/stability.py --dts=128,64 --variants=nvt,rescale,nve --max_minutes=25 > logs/stability_a.log 2>&1
.venv/bin/python launch/stability.py --dts=32,16 --variants=nvt --max_minutes=30 > logs/stability_b.log 2>&1
