# Two commands are all a newcomer needs: `make demo` and `make test`. Everything else is installed on the way.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo demo-local demo-down test test-unit test-integration lint clean

$(STAMP): pyproject.toml
	@echo "==> installing gitopsguard and its test tools into $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m gitopsguard.devcluster.tools
	@touch $(STAMP)

install: $(STAMP)

## Start the local cluster with a node (building Kubernetes once), build gitopsguard's image, install it as Pods
## with `kubectl apply -k` over manifests/ (two replicas, leader election, admission), serving repo-template/'s
## Units (run --root clusters/dev-units), and drive it through the demo's story (kubectl get units, reconcile,
## suspend and resume a Unit, a team confined to its namespace, ...). Needs root (the node); `make demo-local`
## runs the controller as a local process instead.
demo: install
	$(BIN)/gitopsguard demo

demo-local: install
	$(BIN)/gitopsguard demo --local

## Stop the demo (its git daemon), its Pods, node and control plane, and remove its state.
demo-down: install
	$(BIN)/gitopsguard demo --down

## The whole suite: unit tests, then integration tests against a real control plane started for the run.
test: install
	$(BIN)/python -m gitopsguard.devcluster.tools --for-tests
	$(BIN)/python -m pytest -ra -m "not incluster"
	$(BIN)/python -m pytest -ra -m incluster tests/integration

## Unit tests only: no cluster, seconds.
test-unit: install
	$(BIN)/python -m gitopsguard.devcluster.tools --for-tests
	$(BIN)/python -m pytest -ra tests/unit

test-integration: install
	$(BIN)/python -m gitopsguard.devcluster.tools --for-tests
	$(BIN)/python -m pytest -ra -m "not incluster" tests/integration
	$(BIN)/python -m pytest -ra -m incluster tests/integration

lint: install
	$(BIN)/ruff check gitopsguard tests
	$(BIN)/ruff format --check gitopsguard tests
	$(BIN)/mypy gitopsguard tests
	$(BIN)/lint-imports --no-cache
	$(BIN)/hadolint Dockerfile images/demo-web/Dockerfile

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
