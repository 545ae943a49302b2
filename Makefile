# The two commands of the README: `make demo` and `make test`. Both install what they need first.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: demo test install

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Uses the broker on 127.0.0.1:5672, or starts one (the local rabbitmq-server, else docker compose) and says which.
demo: $(VENV)/.installed
	$(PY) -m gateway.devtools.demo_broker --tamper 1

test: $(VENV)/.installed
	$(PY) -m pytest -q
