# Clearance: every target sets up its own virtual environment from pyproject.toml.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
STAMP  := $(VENV)/.installed

.PHONY: run test bench lint typecheck unit system-deps clean fuzz

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

system-deps:
	bash scripts/install-system-deps.sh

run: $(STAMP)
	PORT=$(PORT) $(BIN)/python -m clearance.demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

test: $(STAMP) system-deps lint unit

bench: $(STAMP) system-deps
	$(BIN)/python -m benchmarks

# Coverage-guided fuzzing (atheris): every parser of untrusted input, FUZZ_RUNS inputs each.
# A crash lands in tests/fuzz/crashes/<target>/; keep it in tests/fuzz/regressions/<target>/.
FUZZ_RUNS ?= 100000
FUZZ_TARGETS = json note checkpoint witness-response tiles dsse statement bundle trust-root \
	policy verdict-policy archive witness-request client-state http-body gateway-submit sarif
fuzz: $(STAMP)
	@mkdir -p .fuzz
	@for t in $(FUZZ_TARGETS); do \
		echo "== fuzz $$t ($(FUZZ_RUNS) inputs, log in .fuzz/$$t.log)"; \
		(cd tests && PYTHONPATH=../src:. ../$(BIN)/python -m fuzz.run $$t --runs $(FUZZ_RUNS) \
			--work ../.fuzz/$$t > ../.fuzz/$$t.log 2>&1) || { tail -40 .fuzz/$$t.log; exit 1; }; \
		grep -E "^Done|executed_units" .fuzz/$$t.log; \
	done

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .fuzz
