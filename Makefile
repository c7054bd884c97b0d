# The course in three commands: `make course`, `make test`, `make lab`.
# Each one creates .venv and installs everything first if that has not been done yet.
# Every target runs tools/course.py, which holds the commands; without make (Windows) run it
# directly: `py tools\course.py test`.

PYTHON ?= python3
VENV   ?= .venv
COURSE := $(PYTHON) tools/course.py

.PHONY: course workshop test lab install clean gpu-check models browser-test

## Create $(VENV) with $(PYTHON) and install the course (constraints.txt; pyproject's no-deps list with --no-deps),
## when not yet done or pyproject.toml or constraints.txt changed since.
install:
	$(COURSE) install --venv $(VENV)

## Execute every notebook top to bottom; executed copies and figures go to build/.
course:
	$(COURSE) course --venv $(VENV)

## The same in workshop mode (FACESTYLE_WORKSHOP=1): every lesson in minutes; outputs go to build/workshop/.
workshop:
	$(COURSE) workshop --venv $(VENV)

## Unit tests plus every notebook in quick mode under nbval.
test:
	$(COURSE) test --venv $(VENV)

## Train the full-recipe model files of lessons 03-05 into build/models/, each with <name>.metrics.json beside it.
models:
	$(COURSE) models --venv $(VENV)

## Prove the course on a CUDA GPU (report under benchmarks/results/); without one it says so and exits 0.
gpu-check:
	$(COURSE) gpu-check --venv $(VENV)

## Lesson 06's studio in JupyterLab in headless Chromium: Run All, choose a face and a model, screenshot to
## build/browser/06_studio.png (build/quick/browser/ with FACESTYLE_QUICK=1); without Chromium or selenium
## it says what to install and exits 0.
browser-test:
	$(COURSE) browser-test --venv $(VENV)

## Open JupyterLab at the notebooks.
lab:
	$(COURSE) lab --venv $(VENV)

clean:
	$(COURSE) clean
