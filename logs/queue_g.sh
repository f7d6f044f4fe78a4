#!/bin/bash
# After queue F: error vs cost again (Verlet timing fix).
cd /work/main
while pgrep -f queue_f.sh > /dev/null; do sleep 15; done
.venv/bin/python launch/error_cost.py > logs/error_cost2.log 2>&1
