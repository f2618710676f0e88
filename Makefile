# nortonkit: `make demo` and `make test` are all a newcomer needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.nortonkit-installed

.PHONY: demo study reproduce test lint bench clean

# One pip command line, torch pinned beside the project (see README, "Set-up").
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q torch==2.13.0 -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m nortonkit.demo

# The full synthetic study (about an hour on 2 CPU cores): results/ is committed.
STUDY_NOTEBOOKS := 10_data_prep.ipynb 20_pretrain.ipynb 40_ablations.ipynb \
	55_transport_study.ipynb 60_noise_robustness.ipynb
study: $(STAMP)
	$(PY) -m nortonkit.demo --profile full --study-dir results --out-dir results/report \
		--notebooks $(STUDY_NOTEBOOKS)

# Real data at full size: make reproduce DATA_ROOT=... CHECKPOINT=... DEVICE=cuda
DATA_ROOT ?=
CHECKPOINT ?=
DEVICE ?= cuda
reproduce: $(STAMP)
	$(PY) -m nortonkit.demo --dataset real --data-root "$(DATA_ROOT)" --checkpoint "$(CHECKPOINT)" --device $(DEVICE)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports    # the layer contracts of pyproject.toml [tool.importlinter]

test: lint
	$(PY) -m pytest

bench: $(STAMP)
	for b in benchmarks/b*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) reports artifacts .pytest_cache
