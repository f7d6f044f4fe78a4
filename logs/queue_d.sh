#!/bin/bash
# Transfer to 32000 atoms, error vs cost, tailoring; then re-analysis of the cached runs.
cd /work/main
.venv/bin/python launch/figure2.py --system=large --data_dir=data/large --variants=nve --dts=128,64 > logs/figure2_large.log 2>&1
.venv/bin/python launch/error_cost.py > logs/error_cost.log 2>&1
.venv/bin/python launch/figure2.py --variants=nve,rescale,nvt,tailor > logs/figure2_tailor.log 2>&1
.venv/bin/python launch/figure2.py --system=paper --data_dir=data/paper --variants=nve > logs/figure2_paper2.log 2>&1
