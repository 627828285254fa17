# asgi-lab: `make lab`, `make matrix`, open reports/index.html. `make help` lists targets.
PYTHON  ?= python3
VENV    := .venv
PY      := $(abspath $(VENV))/bin/python
PRESET  ?= talk
ROUTE   ?= granian.direct.h2
ASGILAB := cd loadgen && $(PY) -m asgilab
DEBS    := loadgen/debian-packages.txt

.PHONY: help setup lab down status routes matrix report test lint clean locust-ui

help:
	@echo "make lab       bring the lab up (Compose when a Docker engine answers, else local processes)"
	@echo "make matrix    measure a preset (PRESET=$(PRESET); also PRESET=quick) and write reports/index.html"
	@echo "make down      stop everything the lab started"
	@echo "make test      run the test suite"
	@echo "make routes    list the routes; make status says whether the lab runs"
	@echo "make locust-ui Locust's web UI against ROUTE=$(ROUTE) on 127.0.0.1 (WORKERS=N: master + N workers)"
	@echo "Force a runtime with LAB_RUNTIME=local|compose."

setup: $(VENV)/.installed .lab/.debs

.lab/.debs: $(DEBS)
	@bash loadgen/install-debian-packages.sh $(DEBS)
	@mkdir -p .lab && touch $@

$(VENV)/.installed: servers/requirements.txt loadgen/requirements.txt loadgen/requirements-dev.txt
	@echo "setup: creating $(VENV) and installing pinned Python packages ..."
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/python -m pip install -q --disable-pip-version-check -r loadgen/requirements-dev.txt
	@touch $@

lab: setup
	@$(ASGILAB) up

down: setup
	@$(ASGILAB) down

status: setup
	@$(ASGILAB) status

routes: setup
	@$(ASGILAB) routes

matrix: setup
	@$(ASGILAB) matrix --preset $(PRESET) $(if $(LOCUST_WORKERS),--locust-workers $(LOCUST_WORKERS))

locust-ui: setup
	@$(ASGILAB) locust-ui --route $(ROUTE) $(if $(WORKERS),--workers $(WORKERS))

report: setup
	@$(ASGILAB) report

test: setup
	@$(PY) -m pytest

lint: setup
	@$(VENV)/bin/ruff check loadgen tests servers

clean: down
	rm -rf .lab reports/results reports/*.html reports/*.csv
