# One target per developer task. Each creates .venv on first use.
# What gets installed is pinned by constraints.txt (made from pyproject.toml by `make lock`), so a release
# upstream cannot change what CI runs; PIP_CONSTRAINT also pins pip and the build backend.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS := dev,ray
PINNED := PIP_CONSTRAINT=$(CURDIR)/constraints.txt

.PHONY: install test lint demo bench lock clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "distill-bot needs Python 3.11 or newer")'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PINNED) $(BIN)/pip install --quiet --upgrade pip setuptools
	$(PINNED) $(BIN)/pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

# pytest exits 5 when it collects nothing; that fails here like any other non-zero status.
test: lint
	$(BIN)/pytest

demo: $(STAMP)
	$(BIN)/distill-bot demo

bench: $(STAMP)
	$(BIN)/python -m bench

# Refresh the pins on purpose: resolve pyproject.toml afresh in a scratch venv and write what it installed.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip setuptools
	.lock-venv/bin/pip install --quiet '.[$(EXTRAS)]'
	{ echo "# Made by \`make lock\` from pyproject.toml on $$(date -u +%F) (Python $$($(PYTHON) -c 'import platform; print(platform.python_version())')). Do not edit by hand."; \
	  .lock-venv/bin/pip freeze --all --exclude distill-bot; } > constraints.txt
	rm -rf .lock-venv build
	@echo "constraints.txt refreshed: review its diff, then run make test."

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
