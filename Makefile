# Two entry points a newcomer needs: `make scan` and `make test`. Both build .venv once
# (re-run only when pyproject.toml or requirements.lock change) and are idempotent.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SAMPLE := sample-archive
OUT    := deeptrawl-out

.PHONY: setup scan test test-fast bench corpus-photos clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock requirements-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/python -m pip install -q -c requirements.lock -e '.[test]'
	$(BIN)/python -m pip install -q --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

scan: $(STAMP)
	$(BIN)/deeptrawl sample $(SAMPLE)
	$(BIN)/deeptrawl scan $(SAMPLE) --out $(OUT)
	$(BIN)/deeptrawl results --out $(OUT) --format table

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

bench: $(STAMP)
	$(BIN)/python bench/scan_throughput.py

# Debian's wallpaper photographs: 25 more real scenes for `deeptrawl corpus build --wallpapers`
# (deeptrawl/corpus/sources.py). Training data only; nothing at scan or test time needs them.
corpus-photos:
	apt-get install -y --no-install-recommends lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 mate-backgrounds

clean:
	rm -rf $(OUT) $(SAMPLE)
