# One-line targets; CI runs .ci/run, which uses the same commands.
VENV ?= .venv
PY = $(VENV)/bin/python

install:
	python3 -m venv $(VENV) && $(VENV)/bin/pip install -q -e '.[dev]'
fmt:
	$(VENV)/bin/ruff format mirrorgate tests bench && $(VENV)/bin/ruff check --fix mirrorgate tests bench
check:
	$(VENV)/bin/ruff format --check mirrorgate tests bench && $(VENV)/bin/ruff check mirrorgate tests bench && $(VENV)/bin/mypy
test:
	$(PY) -m pytest
golden:
	$(PY) -m pytest tests/translate --update-golden -q
.PHONY: install fmt check test golden
fuzz:
	MIRRORGATE_FUZZ_EXAMPLES=5000 $(PY) -m pytest tests/hardening/test_fuzz.py tests/dataplane/test_protocol.py -q
bench:
	$(PY) bench/vs_nginx.py && $(PY) bench/memory_uploads.py
demo:
	$(VENV)/bin/mirrorgate demo
.PHONY: fuzz bench demo
