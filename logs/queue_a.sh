#!/bin/bash
# Core A: error-vs-cost, then transfer roll-outs (4000 and 32000 atoms).
cd /work/main
while pgrep -f "launch/figure2.py$" > /dev/null; do sleep 10; done
.venv/bin/python launch/error_cost.py > logs/error_cost.log 2>&1
.venv/bin/python launch/figure2.py --system=paper --data_dir=data/paper --variants=nve > logs/figure2_paper.log 2>&1
while [ ! -f data/large/manifest.json ]; do sleep 30; done
.venv/bin/python launch/figure2.py --system=large --data_dir=data/large --variants=nve --dts=128,64 > logs/figure2_large.log 2>&1
