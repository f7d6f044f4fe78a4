#!/bin/bash
# After queue A: prediction-time Noether tailoring (energy) as another NVE variant.
cd /work/main
while pgrep -f queue_a.sh > /dev/null; do sleep 20; done
.venv/bin/python launch/figure2.py --variants=tailor > logs/figure2_tailor.log 2>&1
