# Two commands: `make demo` and `make test`. Both set up .venv on first use (idempotent).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mdnet_tf-installed
DEMO_DIR ?= runs/demo
DEMO_PORT ?= 8571

.PHONY: demo test venv clean-demo

venv: $(STAMP)

# torch==2.13.0 first (CPU build; DGL imports torch), then the package with its pins.
$(STAMP): setup.py requirements.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; set PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist worksteal tests

# LAMMPS data -> TF Verlet vs LAMMPS -> a short MDNet training -> Table 1 on the demo data
# -> SavedModel export -> gRPC server -> roll-out through the client -> server stopped
# -> Figure 2 style check: the pretrained 128 fs model rolled out on the demo liquid vs LAMMPS.
demo: $(STAMP)
	$(PY) launch/generate_data.py --preset=smoke --out_dir=$(DEMO_DIR)/data
	$(PY) launch/compare_verlet.py --data_dir=$(DEMO_DIR)/data
	$(PY) launch/train.py --dt=16 --data_dir=$(DEMO_DIR)/data --workdir=$(DEMO_DIR)/mdnet_dt16 \
	    --graph_backend=xla --steps=300 --decay_steps=100 --checkpoint_every=100
	$(PY) launch/evaluate.py --data_dir=$(DEMO_DIR)/data --models=$(DEMO_DIR) --dt=16 \
	    --out_dir=$(DEMO_DIR)/results
	rm -rf $(DEMO_DIR)/models $(DEMO_DIR)/rollout.extxyz $(DEMO_DIR)/rollout.extxyz.thermo
	$(PY) export/export_savedmodel.py --workdir=$(DEMO_DIR)/mdnet_dt16 \
	    --export_base=$(DEMO_DIR)/models/mdnet --version=1
	printf 'model_config_list {\n  config { name: "mdnet" base_path: "%s" model_platform: "tensorflow" }\n}\n' \
	    "$(abspath $(DEMO_DIR))/models/mdnet" > $(DEMO_DIR)/models.config
	$(PY) serving/model_server.py --port=$(DEMO_PORT) \
	    --model_config_file=$(DEMO_DIR)/models.config & server=$$!; \
	$(PY) serving/rollout_client.py --server=127.0.0.1:$(DEMO_PORT) --model_name=mdnet \
	    --start=$(DEMO_DIR)/data --num_steps=20 --steps_per_call=5 --ensemble=nve_rescaled \
	    --output=$(DEMO_DIR)/rollout.extxyz; rc=$$?; kill $$server; exit $$rc
	$(PY) launch/figure2.py --system=demo --data_dir=$(DEMO_DIR)/data --dts=128 \
	    --variants=nve,rescale --time_fs=1024 --runs_dir=$(DEMO_DIR)/rollouts \
	    --out=$(DEMO_DIR)/results/figure2 --plot_system=demo

clean-demo:
	rm -rf $(DEMO_DIR)
