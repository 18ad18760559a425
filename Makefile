# vlmrl build entry points. `make test` and `make demo` bootstrap everything they need.
SHELL := /bin/bash
ROOT := $(shell pwd)
LIBTORCH ?= $(ROOT)/.deps/libtorch
CUDA_DEPS := $(ROOT)/.deps/cuda
SWIFT ?= swift
JOBS ?= $(shell nproc)
DIST := $(ROOT)/dist
export LIBTORCH

.PHONY: all deps build test dist demo cuda-shim clean

all: build

## deps: system packages, libtorch (pinned torch wheel), CUDA runtime/CUPTI/CRT pieces. Idempotent.
deps:
	@scripts/bootstrap-deps

## build: debug build of everything, plus the CUDA shim library next to the binary.
build: deps
	$(SWIFT) build -j $(JOBS)
	@$(MAKE) --no-print-directory cuda-shim OUT_DIR=$(ROOT)/.build/debug

## test: the whole CPU test suite (what CI runs).
test: deps
	scripts/check-package-deps
	scripts/check-doc-links
	$(SWIFT) build --build-tests -j $(JOBS)
	$(SWIFT) test --skip-build --parallel --num-workers $(JOBS) 2>&1 | tee .build/test.log; \
	  status=$${PIPESTATUS[0]}; scripts/test-summary .build/test.log; exit $$status

## cuda-shim: libvlmrl_cuda.so (CUDA graphs, streams, allocator stats, and the fused decode kernels,
## whose CUDA source csrc/decode_kernels.cu is embedded and compiled at run time with NVRTC), dlopen-ed
## only on GPU machines.
OUT_DIR ?= $(ROOT)/.build/debug
CUDA_SHIM_SOURCES := csrc/cuda_shim.cpp csrc/fused_kernels.cpp csrc/decode_kernels.cu $(wildcard csrc/cuda_decls/*.h)
cuda-shim: deps
	@mkdir -p $(OUT_DIR)/cuda-shim-gen
	@if [ ! -f $(OUT_DIR)/libvlmrl_cuda.so ] || [ -n "$$(find $(CUDA_SHIM_SOURCES) -newer $(OUT_DIR)/libvlmrl_cuda.so)" ]; then \
	  echo "[cuda-shim] building $(OUT_DIR)/libvlmrl_cuda.so"; \
	  { printf 'R"VLMRL_CUDA('; cat csrc/decode_kernels.cu; printf ')VLMRL_CUDA"\n'; } > $(OUT_DIR)/cuda-shim-gen/decode_kernels.inc; \
	  g++ -O2 -std=c++17 -shared -fPIC -D_GLIBCXX_USE_CXX11_ABI=1 -Wno-deprecated-declarations \
	    -I$(LIBTORCH)/include -I$(LIBTORCH)/include/torch/csrc/api/include -I$(CUDA_DEPS)/include \
	    -I$(OUT_DIR)/cuda-shim-gen -ISources/CTorch/include -idirafter csrc/cuda_decls csrc/cuda_shim.cpp csrc/fused_kernels.cpp \
	    -o $(OUT_DIR)/libvlmrl_cuda.so \
	    -L$(LIBTORCH)/lib -L$(CUDA_DEPS)/lib -Wl,--no-as-needed -ltorch_cuda -lc10_cuda -ltorch_cpu -lc10 \
	    -l:libcudart.so.13 -ldl -Wl,--as-needed; \
	fi

## dist: release binary for other Linux x86-64 machines (static Swift runtime and image codecs,
## no rpath into this checkout; run with LD_LIBRARY_PATH from scripts/torch-env).
dist: deps
	@mkdir -p $(DIST)
	VLMRL_DIST=1 $(SWIFT) build -c release --static-swift-stdlib --scratch-path .build-dist -j $(JOBS) --product vlmrl
	cp .build-dist/release/vlmrl $(DIST)/vlmrl
	@$(MAKE) --no-print-directory cuda-shim OUT_DIR=$(DIST)
	@echo "dist: $(DIST)/vlmrl and $(DIST)/libvlmrl_cuda.so; run with LD_LIBRARY_PATH=\$$(scripts/torch-env)"

## demo: a real GRPO run on the embedded default (synthetic grounding data, tiny Qwen2.5-VL).
demo: build
	@scripts/demo

clean:
	rm -rf .build .build-dist $(DIST)
