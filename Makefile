# The two commands a newcomer needs (see README):
#   make run   installs everything (once; fast afterwards) and opens the explorer on the embedded data
#   make test  installs everything, test tools included, and runs the whole test suite
PY := .venv/bin/python

.PHONY: setup setup-test run test

setup:
	./scripts/setup.sh

setup-test:
	./scripts/setup.sh --test

run: setup
	$(PY) -m streamlit run explorer_app.py

test: setup-test
	$(PY) -m pytest -q tests
