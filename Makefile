# Two commands do everything: `make run` (local, embedded defaults) and `make test` (PostgreSQL + Redis).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
# The test suite runs against the real services on this machine.
TEST_ENV := DATABASE_URL=$${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/tracker} \
	CELERY_BROKER_URL=$${TEST_BROKER_URL:-redis://127.0.0.1:6379/15} \
	CELERY_RESULT_BACKEND=$${TEST_RESULT_BACKEND:-redis://127.0.0.1:6379/15} \
	CACHE_URL=$${TEST_CACHE_URL:-redis://127.0.0.1:6379/14}
# mypy's Django plugin loads the settings, the local ones (DJANGO_DEBUG); SQLite in memory keeps it off
# any database server and off whatever DATABASE_URL the shell has. The same run is a pre-commit hook
# (.pre-commit-config.yaml).
MYPY := DJANGO_DEBUG=true DATABASE_URL=sqlite://:memory: $(BIN)/mypy

.PHONY: run test venv lint typecheck check-migrations worker clean bench bench-api messages

$(BIN)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed

# Local mode: the embedded defaults, debug pages, no HTTPS and no second factor (production is the default).
run: export DJANGO_DEBUG := true
run: venv
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py ensure_demo_logins
	@echo "Admin: http://127.0.0.1:$(PORT)/admin/  (web, worker and beat log below; Ctrl-C stops all)"
	PATH="$(CURDIR)/$(BIN):$$PATH" WEB_PORT=$(PORT) $(BIN)/honcho start

test: venv
	DJANGO_DEBUG=true DATABASE_URL=sqlite://:memory: $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/ruff check .
	$(MYPY)
	$(TEST_ENV) $(BIN)/python -m pytest

# Speed at scale: fills its own database (tracker_bench; dropped and made anew) with 1,000,000 synthetic
# children and 5,000,000 list entries, then measures each path beside raw SQL (docs/performance.md).
# BENCH_ARGS="--sizes 20000" for a small run, "--keep" to reuse the last fill of the same size.
BENCH_ENV := BENCH_DATABASE_URL=$${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/tracker_bench} \
	BENCH_CACHE_URL=$${BENCH_CACHE_URL:-redis://127.0.0.1:6379/12} \
	DJANGO_SETTINGS_MODULE=config.settings DJANGO_DEBUG=false DATABASE_POOL=false CELERY_BROKER_URL=memory://

bench: venv
	$(BENCH_ENV) $(BIN)/python scripts/benchmark.py $(BENCH_ARGS)

# The partner API: a page in process beside raw SQL, then 8 clients against gunicorn on loopback.
bench-api: venv
	$(BENCH_ENV) $(BIN)/python scripts/bench_api.py $(BENCH_ARGS)
# The Ukrainian catalogue from the code and templates (needs gettext: apt-get install gettext), then
# compiled. Both locale/uk/LC_MESSAGES/django.po and django.mo are committed, so running needs no gettext;
# tests/test_translations.py fails while an entry is untranslated or fuzzy.
messages: export DJANGO_DEBUG := true
messages: venv
	$(BIN)/python manage.py makemessages --locale uk --ignore '.venv/*' --ignore 'var/*' \
		--ignore 'staticfiles/*' --ignore 'scripts/*' --ignore 'tests/*' --ignore 'media/*' --no-wrap
	$(BIN)/python manage.py compilemessages --locale uk --ignore '.venv/*'

lint: venv
	$(BIN)/ruff check .

typecheck: venv
	$(MYPY)

clean:
	rm -rf var media staticfiles
