# sparse-maml: every set-up step lives here, so a fresh clone needs only `make quickstart` / `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# Where prepared datasets live (read by the library and the CLI too).
export SPARSE_MAML_DATA ?= $(CURDIR)/data
# Transparent huge pages for torch's large CPU allocations: fewer page faults, faster CPU training (chapter 09, 'The allocator').
export THP_MEM_ALLOC_ENABLE ?= 1
# jemalloc instead of glibc's malloc: fewer page faults, a faster CPU engine (chapter 09, 'The allocator'). It returns
# memory unused for 10 s (dirty_decay_ms:10000; muzzy_decay_ms:0 so the pages leave the resident set at once). Until
# 2026-12-03 it kept everything (dirty_decay_ms:-1,muzzy_decay_ms:-1,retain:true): in some runs its unused pages then
# grew without bound, the quickstart's resident set from 0.7 to 3.6 GB in 2 minutes (1.4 GB/min; a user saw 10 GB in
# 8 minutes). With the decay the quickstart peaks at 1.06 GB, flat, like glibc, at 95-115% of the old meta-iterations
# per minute; at MiniImageNet shapes the engine is then 1.3x faster than with glibc instead of 2.3x (chapter 09,
# 'Memory over a whole run'). `make jemalloc` installs it where apt is available (test and quickstart do); without
# it the commands run as they are. FAST prefixes the torch commands below (not every command: chromium and git keep
# their own allocator); `make ... JEMALLOC=` runs without it.
JEMALLOC ?= 1
FAST = env $$(lib=$$(ls /usr/lib/*-linux-gnu/libjemalloc.so.2 2>/dev/null | head -1); [ -n "$(JEMALLOC)" ] && \
  [ -n "$$lib" ] && echo LD_PRELOAD=$$lib MALLOC_CONF=dirty_decay_ms:10000,muzzy_decay_ms:0)
# Where Omniglot comes from: a local folder holding the zips, or `download` (official repository).
OMNIGLOT_SOURCE ?= $(if $(wildcard ../shared/data/omniglot/*.zip),../shared/data/omniglot,download)
# 2 cores: two notebooks at a time, one torch thread each.
N_WORKERS ?= 2
TEST_THREADS ?= 1
PIP := $(PY) -m pip install -q --disable-pip-version-check
# setuptools' one remaining notice of an editable install (a folder named like the package in the working directory,
# which is the point of an editable install) is dropped; anything else pip prints gets through.
QUIET_PIP := grep -v -e '^WARNING: Location' -e 'BuildBackendWarning' -e '^ *!!' -e '^ *\*\*\*' -e '^ *$$' \
	-e 'Please be careful' -e 'name as your package' -e 'with strategy' || true

.PHONY: help install quickstart test check-sync lint data browser jemalloc docs readme lab clean gpu-check

help:
	@echo "make quickstart  set up .venv, prepare Omniglot, train sparse-MAML vs MAML and print the results"
	@echo "make test        set up, check notebooks/library are in sync and clean, run every notebook + pytest"
	@echo "make docs        render the course to docs/_build/html (offline)"
	@echo "make lab         JupyterLab on nbs/"
	@echo "make gpu-check   on a CUDA machine: bench, train/resume, quickstart; outputs in gpu-check/<device>-<date>/"

$(BIN)/.installed: setup.py settings.ini constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing into $(VENV) (torch 2.14.1 + torchvision 0.29.2 pinned in constraints.txt; ~2 min)"
	@$(PIP) --upgrade pip 2>&1 | { $(QUIET_PIP); }
	@$(PIP) -c constraints.txt -e ".[dev]" 2>&1 | { $(QUIET_PIP); }
	@touch $@

install: $(BIN)/.installed

data: install
	@$(PY) data_scripts/prepare_omniglot.py --source $(OMNIGLOT_SOURCE) --data-dir $(SPARSE_MAML_DATA)

quickstart: data jemalloc
	@$(FAST) $(BIN)/sparse-maml quickstart

# Fails when the exported library or a notebook's cleaning is out of date with what is checked in.
check-sync: install
	@before=$$(git status --porcelain -- nbs sparse_maml; git diff -- nbs sparse_maml | md5sum); \
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean; \
	after=$$(git status --porcelain -- nbs sparse_maml; git diff -- nbs sparse_maml | md5sum); \
	if [ "$$before" != "$$after" ]; then \
	  echo "error: nbdev_export/nbdev_clean changed files (below): run them and commit the result"; \
	  git status --short -- nbs sparse_maml; exit 1; fi; \
	echo "notebooks and library in sync and clean"

# Lines of at most 120 characters: ruff on notebooks, tests and tools (pyproject.toml), code_stats on the library.
lint: install
	@$(BIN)/ruff check --quiet --output-format concise && $(PY) tools/code_stats.py --check | tail -1

# Headless Chromium for the docs rendering test (skipped with a message where it cannot be installed).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  { apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && \
	    apt-get install -y -qq chromium >/dev/null 2>&1; }; } ; } || echo "note: chromium not installed; the docs rendering test will be skipped"

# jemalloc for the CPU engine (chapter 09); skipped with a message where it cannot be installed.
jemalloc:
	@ls /usr/lib/*-linux-gnu/libjemalloc.so.2 >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  { apt-get install -y -qq libjemalloc2 >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && \
	    apt-get install -y -qq libjemalloc2 >/dev/null 2>&1; }; } ; } || \
	  echo "note: libjemalloc2 not installed; CPU runs use torch's huge-page setting only (slower, chapter 09)"

# The numerics again one instruction set below the one torch uses here (AVX-512 -> AVX2, AVX2 -> SSE4.1; chapter 04,
# 'Checked against torch.nn'): a float32 bound that holds only on the developer's CPU fails here, not on a user's.
LOWER_ISA = $$($(PY) -c "import platform, torch; c = torch.backends.cpu.get_cpu_capability(); \
  x86 = platform.machine() in ('x86_64', 'AMD64'); \
  print('ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2' if c.startswith('AVX512') else \
        'ATEN_CPU_CAPABILITY=default' + (' ONEDNN_MAX_CPU_ISA=SSE41' if x86 else ''))")
NUMERICS_NBS := ^(04_backbone|06_learners|06a_distributed|09_gpu)\.ipynb$$
NUMERICS_TESTS := tests/test_distributed.py tests/test_train_cli.py tests/test_data_scripts.py

# Notebooks run once each as nbdev_test runs them; tools/run_nbs.py also fails where a show_doc cell's saved output, or a
# `#| check_output` cell's, is not what the cell renders now, and prints the command that re-renders the notebook.
test: check-sync lint data browser jemalloc
	OMP_NUM_THREADS=$(TEST_THREADS) $(FAST) $(PY) tools/run_nbs.py --n_workers $(N_WORKERS) --timing
	OMP_NUM_THREADS=$(N_WORKERS) $(FAST) $(BIN)/pytest -q tests
	@isa="$(LOWER_ISA)"; echo "the numerics again under $$isa"; \
	env $$isa OMP_NUM_THREADS=$(TEST_THREADS) $(FAST) $(BIN)/nbdev_test --n_workers $(N_WORKERS) \
	  --file_re '$(NUMERICS_NBS)' && env $$isa OMP_NUM_THREADS=$(N_WORKERS) $(FAST) $(BIN)/pytest -q $(NUMERICS_TESTS)
	@d=$$(mktemp -d) && OMP_NUM_THREADS=1 $(FAST) $(PY) tools/gpu_check.py --dry-run --out $$d | tail -3 && rm -rf $$d

docs: install
	$(PY) tools/build_docs.py

readme: install
	$(PY) tools/make_readme.py

lab: install jemalloc
	$(FAST) $(BIN)/jupyter lab nbs $(if $(filter 0,$(shell id -u)),--allow-root,)

clean:
	rm -rf docs/_build _proc _docs

# On a CUDA machine: benchmark (fp32/tf32/bf16, CUDA graphs), train/stop/resume on Omniglot, quickstart; outputs in
# gpu-check/<device>-<date>/. GPU_CHECK_FLAGS=--dry-run runs the same steps on the CPU at tiny sizes.
gpu-check: data
	$(PY) tools/gpu_check.py $(GPU_CHECK_FLAGS)
