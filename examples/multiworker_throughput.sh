#!/bin/bash
# Multi-worker throughput on this machine: s/step of global batch 2, single process vs
# 2 workers on 127.0.0.1, from the difference of a 240- and a 40-step run (compile excluded).
cd "$(dirname "$0")/.."
run_single() { .venv/bin/python launch/train.py --dt=16 --data_dir=data/small --graph_backend=xla --batch_size=2 --steps=$1 --checkpoint_every=100000 --workdir=/tmp/mwb/single_$1 2>&1 | tr '\r' '\n' | grep "^done"; }
run_pair() {
  for i in 0 1; do
    TF_CONFIG="{\"cluster\": {\"worker\": [\"127.0.0.1:23466\", \"127.0.0.1:23467\"]}, \"task\": {\"type\": \"worker\", \"index\": $i}}" \
    .venv/bin/python launch/train.py --dt=16 --data_dir=data/small --graph_backend=xla --batch_size=2 --steps=$1 --checkpoint_every=100000 --distribute=multi_worker --workdir=/tmp/mwb/pair_$1_$i > /tmp/mwb/pair_$1_$i.log 2>&1 &
  done
  wait
  tr '\r' '\n' < /tmp/mwb/pair_$1_0.log | grep "^done"
}
rm -rf /tmp/mwb; mkdir -p /tmp/mwb
for n in 40 240; do echo "single $n: $(run_single $n)"; echo "2 workers $n: $(run_pair $n)"; done
