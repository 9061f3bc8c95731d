# pangeo-binder: the commands an operator and a developer need.
#   make up STACK=staging      set up the virtualenv, check the CLIs and logins the stack needs,
#                              pick a state backend, deploy the stack
#   make test                  set up the virtualenv, lint, run the test suite (what CI runs)
#   make plan STACK=staging    offline plan: resources, Helm values and monthly cost, no cloud
#                              (COMPARE=origin/main adds the change; FORMAT=markdown|json)

STACK ?= staging
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Used only when no backend is configured (no PULUMI_BACKEND_URL and no `pulumi login`).
LOCAL_BACKEND := file://$(CURDIR)/.pulumi-state

.PHONY: venv test lint format bench plan prereqs login preview up destroy

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

venv: $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# pytest exits 5 when it collects nothing; make treats that as a failure, as it should.
test: lint
	$(BIN)/python -m pytest

# No credentials, no network: the program runs under Pulumi's mock engine.
plan: venv
	$(BIN)/python -m components.plan --stack "$(STACK)" \
		$(if $(COMPARE),--compare "$(COMPARE)") --format "$(or $(FORMAT),text)"

bench: venv
	$(BIN)/python benchmarks/evaluate.py

# The Pulumi CLI, and the cloud CLIs, auth plugin and logged-in identities of the clouds the
# stack file configures: each missing one is named with the command that fixes it.
prereqs: venv
	@$(BIN)/python -m components.prereqs --stack "$(STACK)"

login: prereqs
	@if [ -n "$$PULUMI_BACKEND_URL" ] || pulumi whoami >/dev/null 2>&1; then \
		echo "using the configured Pulumi backend: $$(pulumi whoami --verbose 2>/dev/null | grep -i 'backend url' || echo $$PULUMI_BACKEND_URL)"; \
	else \
		mkdir -p .pulumi-state && pulumi login "$(LOCAL_BACKEND)"; \
	fi

preview: venv login
	pulumi stack select --create "$(STACK)"
	pulumi preview --stack "$(STACK)" --diff

up: venv login
	pulumi stack select --create "$(STACK)"
	pulumi up --stack "$(STACK)"

destroy: login
	pulumi destroy --stack "$(STACK)"
