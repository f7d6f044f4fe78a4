#!/bin/bash
# After queue A: error-vs-cost (re-run), then prediction-time tailoring variant.
cd /work/main
while pgrep -f queue_a.sh > /dev/null; do sleep 20; done
.venv/bin/python launch/error_cost.py > logs/error_cost.log 2>&1
.venv/bin/python launch/figure2.py --variants=tailor > logs/figure2_tailor.log 2>&1
