# The README's two commands: `make demo` (corpus -> train -> index -> serve) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
XMR := $(BIN)/xmr
DATA ?= data/demo
RUN ?= runs/demo
ROOT ?= bundles
VIDEOS ?= 1000
IMAGES ?= 200
EPOCHS ?= 12
CONFIG ?= baseline
HEAD ?= cdnet_serve
PORT ?= 8000
# One OpenMP thread: ONNX Runtime and FAISS otherwise fight over small machines (docs/benchmarks.md).
export OMP_NUM_THREADS ?= 1

.PHONY: imagetext-exp demo test install lint bench clean-demo

install: $(VENV)/.installed

# The full install: torch (pinned, installed first so no multi-GB CUDA build is ever pulled in by the
# train extra's dependencies), then xmr with the train and dev extras. The serving install is plain
# `pip install .` (README "Install").
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[train,dev]'
	touch $@

$(DATA)/manifest.jsonl: | install
	$(XMR) demo-data --out $(DATA) --videos $(VIDEOS) --images $(IMAGES) --seed 0

# last.pt is written every epoch, so the finished-training marker is the test evaluation;
# an interrupted run resumes from its last epoch.
$(RUN)/test_metrics.json: $(DATA)/manifest.jsonl
	env -u OMP_NUM_THREADS $(XMR) train --data $(DATA) --out $(RUN) --config $(CONFIG) --epochs $(EPOCHS) --resume
	env -u OMP_NUM_THREADS $(XMR) eval --run $(RUN) --data $(DATA) --split test --out $@

# The moment head (by default CDNet at serving size, models/moments/configs/cdnet_serve.json: the best
# and the cheapest cdnet in docs/results.md) trains on the demo's long videos (30-150 s, QVHighlights format)
# over the retrieval run's clip features; the indexer then ships it in the bundle as moment_head.onnx.
$(RUN)/moments/last.pt: $(RUN)/test_metrics.json
	env -u OMP_NUM_THREADS $(XMR) moments train --data $(DATA)/long --run $(RUN) --head $(HEAD) --resume

# Two collections: `demo` (the 5-8 s clips and the images) and `long` (the 30-150 s videos, where
# moments matter most); both carry the moment head.
$(ROOT)/demo/CURRENT: $(RUN)/moments/last.pt
	$(XMR) index build $(DATA)/manifest.jsonl --collection demo --root $(ROOT) --model $(RUN)
	$(XMR) index build $(DATA)/long/manifest.jsonl --collection long --root $(ROOT) --model $(RUN)

demo: $(ROOT)/demo/CURRENT
	$(XMR) serve --root $(ROOT) --port $(PORT)

test: install
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy service indexer bundle

bench: $(ROOT)/demo/CURRENT
	$(BIN)/python benchmarks/bench_search.py --root $(ROOT) --data $(DATA)
	$(BIN)/python benchmarks/bench_index.py --data $(DATA) --run $(RUN)
	$(BIN)/python benchmarks/bench_long_video.py --run $(RUN)
	$(BIN)/python benchmarks/bench_coldstart.py --root $(ROOT) --collection demo

clean-demo:
	rm -rf $(DATA) $(RUN) $(ROOT)

# Image-text losses (issue #16): demo set, then every loss x 3 seeds -> docs/results.md + docs/imagetext_rsum.png
data/imagetext/manifest.jsonl: | install
	$(XMR) demo-imagetext --out data/imagetext --images 3000 --seed 0

imagetext-exp: data/imagetext/manifest.jsonl
	nice -n 10 $(BIN)/python -m models.imagetext.experiment --data data/imagetext --out runs/imagetext-exp
