# The commands the README documents. Everything runs from the project's own virtualenv (.venv), created on first use.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
# MNIST for training and tests only; the running product never reads it.
DATA_DIR ?= ../shared/data/mnist
# Real pen-drawn digits, for the learning loop and its tests only (CC BY 4.0, never shipped).
PENDIGITS ?= ../shared/data/pendigits/pendigits-orig.tra.gz
# A second population of real pen digits and numbers (UNIPEN, CC BY 4.0), for 4.0's base training only.
UNIPEN ?= ../shared/data/unipen/unipen-digits-train.jsonl.gz
UNIPEN_NUMBERS ?= ../shared/data/unipen/unipen-numbers-train.jsonl.gz
# Real handwritten letters (UNIPEN), the refusal head's negatives (training only).
UNIPEN_LETTERS ?= ../shared/data/unipen/unipen-letters-train.jsonl.gz
VERSION ?= 1.0
EPOCHS ?= 4
WEIGHTS := model_store/v$(VERSION)/weights.pt
MAR := model_store/mnist.mar
MAR_V2 := model_store/mnist-v2.0.mar
MAR_V3 := model_store/mnist-v3.0.mar
MAR_V4 := model_store/mnist-v4.0.mar
MAR_V5 := model_store/mnist-v5.0.mar
# The archives config.properties loads (2.0 is no longer loaded: `make archive VERSION=2.0` still builds it)
MARS := $(MAR_V5) $(MAR_V4) $(MAR)
HANDLER_FILES := $(wildcard handler/*.py)

.PHONY: help install run stop test lint train train-v4 train-head ship-head archive bench bench-inputs bench-hostile eval eval-refusal clean models load compose-check simulate simulate-unipen retrain

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: Python 3.11 not found (python3.11)"; exit 1; }
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 needed, {sys.version.split()[0]} found"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(INSTALLED)  ## create .venv with everything the product and the tests need

$(MAR): $(INSTALLED) $(HANDLER_FILES) model_store/v1.0/weights.pt
	$(PY) -m training.archive --version 1.0

$(MAR_V2): $(INSTALLED) $(HANDLER_FILES) model_store/v2.0/weights.pt
	$(PY) -m training.archive --version 2.0

$(MAR_V3): $(INSTALLED) $(HANDLER_FILES) $(wildcard model_store/v3.0/*.json) model_store/v3.0/weights.pt
	$(PY) -m training.archive --version 3.0

$(MAR_V4): $(INSTALLED) $(HANDLER_FILES) $(wildcard model_store/v4.0/*.json) $(wildcard model_store/v4.0/pairs.pt) model_store/v4.0/weights.pt
	$(PY) -m training.archive --version 4.0

$(MAR_V5): $(INSTALLED) $(HANDLER_FILES) $(wildcard model_store/v5.0/*.json) $(wildcard model_store/v5.0/pairs.pt) model_store/v5.0/weights.pt
	$(PY) -m training.archive --version 5.0

archive: $(INSTALLED)  ## build model_store/mnist.mar (VERSION=1.0) from the committed weights
	$(PY) -m training.archive --version $(VERSION)

run: $(INSTALLED) $(MARS)  ## start the product (TorchServe on 127.0.0.1:8080-8082); Ctrl-C stops it
	$(PY) -m deploy.run

stop: $(INSTALLED)  ## stop what a background `make run` left running
	$(PY) -m deploy.run stop

test: $(INSTALLED)  ## lint (ruff, mypy) + the whole test suite (starts its own TorchServe and PostgreSQL on free ports)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	MNIST_DIR=$(abspath $(DATA_DIR)) PENDIGITS_FILE=$(abspath $(PENDIGITS)) UNIPEN_FILE=$(abspath $(UNIPEN)) UNIPEN_NUMBERS_FILE=$(abspath $(UNIPEN_NUMBERS)) $(PY) -m pytest $(PYTEST_ARGS)

lint: $(INSTALLED)  ## ruff, and mypy on the product's packages (settings, records, handler, serving, db, app, ui)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Each version's recipe (docs/model-card.md "Training"); TRAIN_ARGS adds to it.
RECIPE_1.0 :=
RECIPE_2.0 := --members 3 --pen-images 20000 --half-weights

train: $(INSTALLED)  ## train VERSION (1.0 or 2.0) into model_store/v$(VERSION)/ from DATA_DIR (downloads if missing)
	$(PY) -m training.train --data-dir $(DATA_DIR) --out model_store/v$(VERSION) --epochs $(EPOCHS) $(RECIPE_$(VERSION)) $(TRAIN_ARGS)

# 4.0's candidate (docs/model-card.md): the base network from MNIST + the pendigits and UNIPEN training writers, then
# the "not a digit" head on its frozen features; into var/v4/ (the lead ships a version through the gate).
V4_OUT ?= var/v4
train-v4: $(INSTALLED)  ## 4.0's candidate: base training + refusal head into $(V4_OUT)/ (CPU; BASE_ARGS, HEAD_ARGS)
	$(PY) -m training.base_training --data-dir $(DATA_DIR) --pendigits $(PENDIGITS) --unipen $(UNIPEN) --out $(V4_OUT)/base $(BASE_ARGS)
	$(PY) -m training.refusal_head --data-dir $(DATA_DIR) --pendigits $(PENDIGITS) --unipen $(UNIPEN) \
		--unipen-numbers $(UNIPEN_NUMBERS) --real-letters 0 --heldout-letters 0 --font-letters 0 --base $(V4_OUT)/base \
		--out $(V4_OUT)/candidate $(HEAD_ARGS)

# The next version's "not a digit" head on a shipped version's frozen network, with real letters as negatives and the
# threshold at the limit the digits allow (docs/model-card.md); into var/, never model_store/.
HEAD_BASE ?= model_store/v4.0
HEAD_OUT ?= var/v5/candidate
train-head: $(INSTALLED)  ## a refusal head on HEAD_BASE's frozen network into HEAD_OUT (CPU, ~1 h; HEAD_ARGS=--measure-only: measure it again)
	$(PY) -m training.refusal_head --data-dir $(DATA_DIR) --pendigits $(PENDIGITS) --unipen $(UNIPEN) \
		--unipen-numbers $(UNIPEN_NUMBERS) --unipen-letters $(UNIPEN_LETTERS) --mnist-refusal 0.005 \
		--base $(HEAD_BASE) --out $(HEAD_OUT) --cache var/v5-cache $(HEAD_ARGS)

HEAD_VERSION ?= 5.0
ship-head: $(INSTALLED)  ## model_store/v5.0 (HEAD_VERSION) from HEAD_OUT's head and HEAD_BASE, with its photo threshold
	$(PY) -m training.head_version --head $(HEAD_OUT) --base $(HEAD_BASE) --out model_store/v$(HEAD_VERSION)
	$(PY) -m training.photo_threshold --version model_store/v$(HEAD_VERSION) --data-dir $(DATA_DIR) \
		--pendigits $(PENDIGITS) --write

eval-refusal: $(INSTALLED) $(MARS)  ## what the default refuses through the live API: the acceptance sets of "not a digit" (starts TorchServe)
	$(PY) -m training.evaluate_refusal --data-dir $(DATA_DIR) --pendigits $(PENDIGITS) --unipen $(UNIPEN) \
		--unipen-numbers $(UNIPEN_NUMBERS) --unipen-letters $(UNIPEN_LETTERS) $(EVAL_ARGS)

models: $(INSTALLED)  ## manage the running model versions: make models ARGS="list | set-default 2.0 | ..."
	$(PY) -m app.cli $(or $(ARGS),list)

eval: $(INSTALLED) $(MARS)  ## accuracy of the live API on MNIST test, canvas-style drawings and held-out UNIPEN files (starts TorchServe)
	$(PY) -m training.evaluate --data-dir $(DATA_DIR) $(if $(wildcard $(UNIPEN)),--unipen $(UNIPEN)) $(EVAL_ARGS)

# The learning loop (docs/model-card.md): simulated users' feedback -> a gated candidate version.
WRITERS ?= 1-30
PER_WRITER ?= 400
simulate: $(INSTALLED)  ## pen-drawn digits of WRITERS predicted and labelled through the running page (make run first)
	$(PY) -m training.simulate --pendigits $(PENDIGITS) --writers $(WRITERS) --per-writer $(PER_WRITER) $(SIMULATE_ARGS)

# 4.0's gate: browsers no shipped version trained on, one per held-out UNIPEN session file (docs/model-card.md)
simulate-unipen: $(INSTALLED)  ## the held-out UNIPEN files' digits predicted and labelled through the running page
	$(PY) -m training.simulate --unipen $(UNIPEN) --files validation --per-writer $(PER_WRITER) $(SIMULATE_ARGS)

NEGATIVES ?= 1500
retrain: $(INSTALLED)  ## the next version from the labelled drawings in PostgreSQL, gated, registered as a candidate
	$(PY) -m training.retrain --data-dir $(DATA_DIR) --negatives $(NEGATIVES) $(RETRAIN_ARGS)

USERS ?= 32
SECONDS ?= 60
load: $(INSTALLED) $(MARS)  ## USERS users draw, predict, label for SECONDS s against the whole product (loopback)
	$(PY) -m tools.load --data-dir $(DATA_DIR) --users $(USERS) --seconds $(SECONDS)

bench: $(INSTALLED) $(MARS)  ## benchmarks (speed targets live here, never in tests)
	PENDIGITS_FILE=$(abspath $(PENDIGITS)) $(PY) -m tools.bench --data-dir $(DATA_DIR)

bench-hostile: $(INSTALLED)  ## 4 normal users beside 4 clients sending the dearest images (ARGS=--why: a tab flooding Why?), a running product
	$(PY) -m tools.bench_hostile $(ARGS)

bench-inputs: $(INSTALLED)  ## what one request costs the worker: the dearest accepted images against a drawing (ARGS=--numbers: the Number mode)
	PENDIGITS_FILE=$(abspath $(PENDIGITS)) UNIPEN_NUMBERS_FILE=$(abspath $(UNIPEN_NUMBERS)) $(PY) -m tools.bench_inputs $(ARGS)

compose-check: $(INSTALLED)  ## build the images, run docker-compose.yml with podman and check it as a user would (root, ~15 min cold)
	$(PY) -m tests.acceptance.compose_check $(ARGS)

clean:  ## remove the virtualenv, built archives and runtime state (var/)
	rm -rf $(VENV) var $(MARS) $(MAR_V2) $(MAR_V3)
