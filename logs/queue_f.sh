#!/bin/bash
# Core A after queue D: the 128 fs model rescaled on 32000 atoms (NVE fails there).
cd /work/main
while pgrep -f queue_d.sh > /dev/null; do sleep 15; done
.venv/bin/python launch/figure2.py --system=large --data_dir=data/large --variants=nve,rescale --dts=128 > logs/figure2_large2.log 2>&1
