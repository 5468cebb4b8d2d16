# The two commands of the README:
#   make demo   build and start the dev control plane, then run the demo against it
#   make test   lint, unit and e2e tests (tox), exactly what CI runs
#   make demo-tenants   two teams, each with its own repository, locked into its slice (docs/tenancy.md)
#   make image    the OCI image, without a Docker engine (packaging/image.sh; docs/install.md)
#   make plugin   the single-file plugin and its krew manifest's sha256 (packaging/plugin.sh)
#   make test-image   the image's and the plugin's tests (tests/image; slow, not part of `make test`)
PYTHON ?= python3
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin

.PHONY: demo demo-tenants test venv clean image plugin test-image

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,lint]' tox
	touch $@

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	PATH="$(BIN):$$PATH" bash examples/demo.sh

demo-tenants: $(VENV)/.installed
	PATH="$(BIN):$$PATH" bash examples/tenants.sh

test: $(VENV)/.installed
	PATH="$(BIN):$$PATH" $(BIN)/tox run -e lint,unit,e2e

image: $(VENV)/.installed
	PYTHON=$(BIN)/python bash packaging/image.sh

plugin: $(VENV)/.installed
	PYTHON=$(BIN)/python bash packaging/plugin.sh

test-image: $(VENV)/.installed
	PATH="$(BIN):$$PATH" $(BIN)/tox run -e image

clean:
	rm -rf $(VENV) .tox
