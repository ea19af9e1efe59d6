# policyforge — every target installs what it needs first (scripts/install-deps.sh is quick
# when everything is already there).
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
PF    := $(VENV)/bin/policyforge
TASK  ?= cache
ARGS  ?=

.PHONY: deps build demo test test-fast synth bench-engine bench-cache bench-cc bench-eplb vm vm-shell vm-bench vagrant-box vagrant-test clean

deps:
	@scripts/install-deps.sh

build: deps

## The main job: a cache-eviction synthesis with the offline generator on the demo trace.
demo: deps
	$(PF) run cache --generator offline --rounds 10 --candidates-per-round 24 --workers 2 --seed 1

test: deps
	$(PY) -m pytest -ra $(ARGS)

## seconds, no root or toolchain needed: the store, selector, prompt, expressions (tests/unit)
test-fast: deps
	$(PY) -m pytest -ra tests/unit $(ARGS)

## make synth TASK=cache|cc|eplb [ARGS="--rounds 10 ..."]
synth: deps
	$(PF) run $(TASK) $(ARGS)

bench-engine: deps
	$(PY) bench/engine/run.py

bench-cache: deps
	$(PY) bench/cache/run.py

bench-cc: deps
	$(PY) bench/cc/run.py

bench-eplb: deps
	$(PY) bench/eplb/run.py

vm: deps
	scripts/vm-build.sh

vm-shell: vm
	$(PY) -m policyforge.vm shell

vm-bench: vm
	$(PY) bench/vm/run.py

## the `make vm` image as the vagrant-libvirt box policyforge/bookworm (vagrant/Vagrantfile's default)
vagrant-box: vm
	scripts/libvirt-up.sh
	scripts/vagrant-box.sh

## vagrant up + a winner as a kernel module over vagrant ssh + destroy; records bench/vm/vagrant.md
vagrant-test: vagrant-box
	PF_VAGRANT_RECORD=bench/vm/vagrant.md $(PY) -m pytest -ra -m vagrant tests/vagrant $(ARGS)

clean:
	rm -rf build runs
