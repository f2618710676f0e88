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
	$(PY) -m nortonkit.lab.demo

# The full synthetic study (about an hour on 2 CPU cores): results/ is committed.
STUDY_NOTEBOOKS := 10_data_prep.ipynb 20_pretrain.ipynb 40_ablations.ipynb \
	55_transport_study.ipynb 60_noise_robustness.ipynb
study: $(STAMP)
	$(PY) -m nortonkit.lab.demo --profile full --study-dir results --out-dir results/report \
		--notebooks $(STUDY_NOTEBOOKS)

# Real data at full size: make reproduce DATA_ROOT=... CHECKPOINT=... DEVICE=cuda
DATA_ROOT ?=
CHECKPOINT ?=
DEVICE ?= cuda
reproduce: $(STAMP)
	$(PY) -m nortonkit.lab.demo --dataset real --data-root "$(DATA_ROOT)" --checkpoint "$(CHECKPOINT)" --device $(DEVICE)

# Each notebooks/NN_*.py (percent script, the source) and its .ipynb hold the same cells;
# after editing a script: .venv/bin/jupytext --sync notebooks/NN_name.py
define NOTEBOOK_PAIRS
import glob, os, sys
import jupytext
def cells(path):
    text = jupytext.writes(jupytext.read(path), "py:percent")
    return [(c.cell_type, c.source, c.metadata) for c in jupytext.reads(text, "py:percent").cells]
folder = sys.argv[1]
stems = sorted({os.path.splitext(p)[0] for ext in ("py", "ipynb")
                for p in glob.glob(os.path.join(folder, "[0-9]*." + ext))})
stale = [os.path.basename(s) for s in stems
         if not (os.path.isfile(s + ".py") and os.path.isfile(s + ".ipynb"))
         or cells(s + ".py") != cells(s + ".ipynb")]
if stale:
    sys.exit("notebooks out of sync with their .py: " + ", ".join(stale)
             + " (run .venv/bin/jupytext --sync on the edited file)")
endef
export NOTEBOOK_PAIRS

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports    # the layer contracts of pyproject.toml [tool.importlinter]
	$(PY) -c "$$NOTEBOOK_PAIRS" notebooks

test: lint
	$(PY) -m pytest

bench: $(STAMP)
	for b in benchmarks/b*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) reports artifacts .pytest_cache
