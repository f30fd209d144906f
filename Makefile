# The README's commands. `make run` starts the service on embedded defaults; `make test` runs the whole suite.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PORT ?= 8000

.PHONY: install run test lint bench bench-ingest bench-first-verdict bench-console bench-hashes train-default cross-source clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	$(PY) -m pip install --quiet -e ".[dev]"
	# Tests embed Stable Diffusion watermarks with the reference encoder; --no-deps because it requires the GUI
	# build of OpenCV, which would shadow the headless one we use.
	$(PY) -m pip install --quiet --no-deps invisible-watermark==0.2.0
	touch $(STAMP)

install: $(STAMP)

## Set up and run the service on embedded defaults (SQLite, filesystem broker, shipped model): web + Celery worker.
## The demo platform gets a fresh API token each run; the console lead's password is printed once
## (ROTATE_PASSWORD=1 issues a new one). The model is prepared (ONNX export, first run only) before "Serving".
ROTATE_PASSWORD ?=
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py platform_create demo --if-exists=rotate
	$(PY) manage.py demo_console_user demo-lead $(if $(filter 1 true yes,$(ROTATE_PASSWORD)),--rotate)
	PORT=$(PORT) $(PY) -m config.run

## Set up and run every test. Integration tests use PostgreSQL + Redis + a Celery worker where they are reachable.
test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/lint-imports

## Detector throughput vs the naive per-image path and this CPU's GEMM roofline, as JSON.
bench: install
	$(PY) -m detector bench

## Load-test the signed upload webhook under gunicorn on loopback: one JSON (req/s, p50/p99, errors, scans after draining).
## On PostgreSQL + Redis: make bench-ingest INGEST_DATABASE_URL=postgres://… INGEST_BROKER_URL=redis://… (a database
## of its own: the bench migrates it and adds its platform). INGEST_ARGS=--callbacks calls every verdict back.
INGEST_DATABASE_URL ?=
INGEST_BROKER_URL ?=
INGEST_ARGS ?=
bench-ingest: install
	$(PY) manage.py bench_ingest $(if $(INGEST_DATABASE_URL),--database-url $(INGEST_DATABASE_URL)) \
		$(if $(INGEST_BROKER_URL),--broker-url $(INGEST_BROKER_URL)) $(INGEST_ARGS)

## Near-duplicate lookups against a bank of 1,000,000 PDQ hashes: lookups/s, p99 latency, memory (JSON).
bench-hashes: install
	$(PY) -m detector bench-hashes --size 1000000

## A first run timed: make run's steps in a fresh data dir with an empty ONNX cache, one send_test_webhook at
## "Serving", the lookup API polled until the verdict (JSON: seconds to "Serving", "Serving" to verdict).
bench-first-verdict: install
	$(PY) manage.py bench_first_verdict

## Seed 100k uploads into PostgreSQL and time the moderator console's pages (JSON); the seed is deleted afterwards.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
bench-console: install
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) manage.py migrate --noinput --verbosity 0
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) manage.py bench_console --uploads 100000

## Retrain the shipped default from ../shared (needs the shared datasets and weights; ~2 h on 2 cores): the thumbnail
## expert (a CIFAKE probe, its last stage fine-tuned, then specialised on CIFAKE), then the photo path (heads on frozen
## CNN-crop and ViT features, stacking fusion, operating points), then the serving-path reports. Writes to var/ unless
## MODEL_OUT=detector/models/default.
MODEL_OUT ?= var/models/default
train-default: install
	$(PY) -m training train-default --model cnn --out var/train-default/cnn-probe --version 0.2.0
	$(PY) -m training finetune-cnn --init var/train-default/cnn-probe --out var/train-default/cnn --epochs 3 --version 0.2.0
	$(PY) -m training train-thumbnail --init var/train-default/cnn --out var/train-default/thumb --epochs 5 --version 0.3.0
	$(PY) -m training train-photo-path --thumbnail var/train-default/thumb --out $(MODEL_OUT) --version 1.1.0
	$(PY) -m training report-default --models $(MODEL_OUT) --out reports/default

## Leave each shared modern source out in turn (the whole photo-path recipe refitted each time; features cached).
cross-source: install
	$(PY) -m training cross-source --out reports/cross_source

clean:
	rm -rf $(VENV) var
