# asgi-lab: `make lab`, `make matrix`, open reports/index.html. `make help` lists targets.
PYTHON  ?= python3
VENV    := .venv
PY      := $(abspath $(VENV))/bin/python
PRESET  ?= talk
ROUTE   ?= granian.direct.h2
# Your own app (README, "Your own app"): passed on as LAB_* with absolute paths.
APP_ENV  = $(if $(APP),LAB_APP=$(APP) LAB_APP_DIR=$(abspath $(or $(APP_DIR),.))) \
           $(if $(APP_REQUIREMENTS),LAB_APP_REQUIREMENTS=$(abspath $(APP_REQUIREMENTS))) \
           $(if $(TARGETS),LAB_TARGETS=$(abspath $(TARGETS))) \
           $(if $(LOCUSTFILE),LAB_LOCUSTFILE=$(abspath $(LOCUSTFILE)))
ASGILAB  = cd loadgen && $(strip $(APP_ENV)) $(PY) -m asgilab
DEBS    := loadgen/debian-packages.txt

.PHONY: help setup lab down status routes check compare matrix browser features attacks mangum report screenshot test test-fast lint clean images images-offline locust-ui compose-file

help:
	@echo "make lab       bring the lab up (Compose when a Docker engine answers, else local processes)"
	@echo "make matrix    measure a preset (PRESET=$(PRESET); also PRESET=quick) and write reports/index.html"
	@echo "make matrix PRESET=app APP=mod:attr APP_DIR=.. TARGETS=..  your own app (README, \"Your own app\")"
	@echo "make matrix PRESET=crosscheck  h2load and oha on the same cells; PRESET=h3  HTTP/3 under load (oha)"
	@echo "make browser   the 24-request page in headless Chromium, every server and proxy path"
	@echo "make features  probe which server and proxy path supports each protocol/ASGI feature"
	@echo "make attacks   attacks (Rapid Reset, CONTINUATION flood, slowloris, smuggling, ...) and HTTP/2 conformance (ATTACKS=smoke: a few)"
	@echo "make mangum    Mangum (an AWS Lambda adapter) in process: every event kind verified, its feature row, its cost"
	@echo "make compare OLD=old/reports NEW=reports  cell by cell: what got faster, slower, or did not measurably change"
	@echo "make down      stop everything the lab started"
	@echo "make test      run the test suite (unit and integration: starts servers, proxies, tools, browsers)"
	@echo "make test-fast the unit tests only (pytest -m 'not integration'), for a quick loop"
	@echo "make routes    list the routes; make check requests each over its protocol; make status"
	@echo "make images    build the Compose images (base images pulled, or made offline when no registry answers)"
	@echo "make compose-file  regenerate compose.yaml from servers/catalog.toml and proxy/ (after adding a variant)"
	@echo "make images-offline  make every base image from Debian packages and wheels fetched on the host"
	@echo "make locust-ui Locust's web UI against ROUTE=$(ROUTE) on 127.0.0.1 (WORKERS=N: master + N workers)"
	@echo "Across machines: LAB_SERVERS_CONTEXT=ctx LAB_SERVERS_ADDR=ip LAB_LOAD_CONTEXTS=ctx[,ctx] on lab, matrix and down (README, \"Running across machines\")"
	@echo "Force a runtime with LAB_RUNTIME=local|compose."

setup: $(VENV)/.installed .lab/.debs .lab/envs/.made .lab/tools/.made

# Load tools that are not Debian packages: oha, pinned in loadgen/asgilab/tools/oha.py, built with cargo.
.lab/tools/.made: $(VENV)/.installed loadgen/asgilab/tools/oha.py
	@$(ASGILAB) tools
	@mkdir -p .lab/tools && touch $@

# Variants with an environment of their own (servers/envs/*): a venv each, with its Python.
.lab/envs/.made: $(VENV)/.installed $(wildcard servers/envs/*/requirements.txt servers/envs/*/env.toml)
	@$(ASGILAB) envs
	@mkdir -p .lab/envs && touch $@

.lab/.debs: $(DEBS)
	@bash loadgen/install-debian-packages.sh $(DEBS)
	@mkdir -p .lab && touch $@

$(VENV)/.installed: servers/requirements.txt loadgen/requirements.txt loadgen/requirements-dev.txt
	@echo "setup: creating $(VENV) and installing pinned Python packages ..."
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/python -m pip install -q --disable-pip-version-check -r loadgen/requirements-dev.txt
	@touch $@

lab: setup
	@$(ASGILAB) up $(if $(SERVERS),--servers $(SERVERS))

down: setup
	@$(ASGILAB) down

OLD ?=
NEW ?= reports
compare: setup
	@test -n "$(OLD)" || { echo "make compare: give OLD=path/to/reports (the set before; NEW defaults to reports)"; exit 2; }
	@$(ASGILAB) compare $(abspath $(OLD)) $(abspath $(NEW))

status: setup
	@$(ASGILAB) status

routes: setup
	@$(ASGILAB) routes

check: setup
	@$(ASGILAB) check

images: setup
	@$(ASGILAB) images

images-offline: setup
	@$(ASGILAB) images --offline

compose-file: setup
	@$(ASGILAB) compose-file

matrix: setup
	@$(ASGILAB) matrix --preset $(PRESET) $(if $(SERVERS),--servers $(SERVERS)) $(if $(PATHS),--paths $(PATHS)) $(if $(LOCUST_WORKERS),--locust-workers $(LOCUST_WORKERS))

locust-ui: setup
	@$(ASGILAB) locust-ui --route $(ROUTE) $(if $(WORKERS),--workers $(WORKERS))

browser: setup
	@$(ASGILAB) matrix --preset browser

mangum: setup
	@$(ASGILAB) mangum

features: setup
	@$(ASGILAB) features $(if $(SERVERS),--servers $(SERVERS)) $(FEATURES_ARGS)

# ATTACKS=smoke|full (loadgen/attacks.toml), SERVERS=..., ATTACKS_ARGS="--attacks rapid-reset --paths direct"
attacks: setup
	@$(ASGILAB) attacks $(if $(ATTACKS),--preset $(ATTACKS)) $(if $(SERVERS),--servers $(SERVERS)) $(ATTACKS_ARGS)

report: setup
	@$(ASGILAB) report

screenshot: setup
	@$(ASGILAB) report --screenshot

test: setup
	@$(PY) -m pytest

test-fast: setup
	@$(PY) -m pytest -m "not integration"

lint: setup
	@$(VENV)/bin/ruff check loadgen tests servers

clean: down
	rm -rf .lab reports/results reports/features reports/attacks reports/*.html reports/*.csv
