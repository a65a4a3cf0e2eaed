# Two commands on a fresh machine with only Python >= 3.11:
#   make run   - venv, install, migrate, demo data, nightly pipeline once, serve :8000
#   make test  - venv, install, the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_ACCOUNTS ?= 200
DEMO_DAYS ?= 400

.PHONY: run test lint clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "Python >= 3.11 is needed; '$(PYTHON)' is older. Try: make $(MAKECMDGOALS) PYTHON=python3.12"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# the demo's key features (accounts.demo.DEMO_KEY_FEATURES), for every command of the demo
run: export KEY_FEATURES ?= report_created,export_run,workflow_automated
run: $(STAMP)
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py seed_demo --accounts $(DEMO_ACCOUNTS) --days $(DEMO_DAYS) --seed 1 --health-weeks 26 --kpi-months 6 --if-empty
	$(BIN)/python manage.py voice_refresh --themes
	$(BIN)/python manage.py run_pipeline
	$(BIN)/python manage.py demo_logins
	$(BIN)/python manage.py runserver 127.0.0.1:8000

# pytest exits 5 when it collected no test (e.g. a -m filter matched nothing): not a failure
test: $(STAMP)
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) db.sqlite3 media
