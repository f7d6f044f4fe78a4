#!/bin/bash
# Core B after the 64/128 stability runs: 32 and 16 fs under CSVR (wall-time budgets).
cd /work/main
while pgrep -f "launch/stability.py" > /dev/null; do sleep 15; done
.venv/bin/python launch/stability.py --dts=32 --variants=nvt --max_minutes=20 > logs/stability_b.log 2>&1
.venv/bin/python launch/stability.py --dts=16 --variants=nvt --max_minutes=12 > logs/stability_c.log 2>&1
