# pangeo-binder: the commands an operator and a developer need.
# STACK names a stack file (Pulumi.STACK.yaml). Unset, it is the one stack file there is; with
# none or several, the stack targets stop, list them and name init (README, Quickstart).
#   make up STACK=NAME         set up the virtualenv, check the CLIs and logins the stack needs,
#                              pick a state backend, deploy the stack
#   make preview STACK=NAME    the same checks as up, then pulumi preview --diff with the policy pack
#   make destroy STACK=NAME    pulumi destroy (prod's protect guards refuse)
#   make prereqs STACK=NAME    only the check of the CLIs and logins
#   make test                  set up the virtualenv, lint, run the test suite (what CI runs;
#                              the chart tests need `python -m pangeo_binder.charts fetch` once,
#                              the dashboard tests `make dashboards`)
#   make lock                  re-resolve the hashed lock files after changing dependencies
#   make plan STACK=NAME       offline plan: resources, Helm values and monthly cost, no cloud
#                              (COMPARE=origin/main adds the change; FORMAT=markdown|json)

PYTHON ?= python3
# The stack targets stop before anything runs (no venv, no pulumi) unless STACK names an
# existing stack file; with STACK unset, the only stack file is the stack.
STACK_TARGETS := login prereqs plan cold-start preview up destroy
STACK_FILES := $(sort $(wildcard Pulumi.*.yaml))
STACK_NAMES := $(patsubst Pulumi.%.yaml,%,$(STACK_FILES))
INIT_HINT := create one with .venv/bin/python -m pangeo_binder.init --stack NAME --cloud gcp|aws ... (README, Quickstart step 3; docs/howto/new-stack.md)
ifneq ($(filter $(STACK_TARGETS),$(MAKECMDGOALS)),)
ifeq ($(strip $(STACK)),)
ifeq ($(words $(STACK_NAMES)),1)
STACK := $(STACK_NAMES)
$(info using STACK=$(STACK), the only stack file here (Pulumi.$(STACK).yaml))
else ifeq ($(words $(STACK_NAMES)),0)
$(error no stack file (Pulumi.NAME.yaml) here; $(INIT_HINT))
else
$(error STACK is not set and there are $(words $(STACK_NAMES)) stack files: $(STACK_NAMES); run make $(firstword $(filter $(STACK_TARGETS),$(MAKECMDGOALS))) STACK=NAME with one of them, or $(INIT_HINT))
endif
else ifeq ($(wildcard Pulumi.$(STACK).yaml),)
$(error STACK=$(STACK) has no stack file Pulumi.$(STACK).yaml (stack files here: $(or $(STACK_NAMES),none)); $(INIT_HINT))
endif
endif
VENV := .venv
BIN := $(VENV)/bin
# Used only when no backend is configured (no PULUMI_BACKEND_URL and no `pulumi login`).
LOCAL_BACKEND := file://$(CURDIR)/.pulumi-state
# Hashed lock files (README "Locked dependencies"): everything `make` installs, and the runtime
# subset that `pulumi up` installs (requirements.txt) when it creates .venv itself.
DEV_LOCK := requirements-dev.txt
RUNTIME_LOCK := requirements.txt
# The [build-system] requires of pyproject.toml, locked too: the package is built without
# build isolation, so nothing unhashed is downloaded (tests/test_lock.py checks they agree).
BUILD_REQUIRES := setuptools>=77
# What the hub image adds to the chart's (jupyterhub-fancy-profiles, pinned with its hash): the
# browser test of the spawn form runs the hub with exactly this file's packages, as the image does.
HUB_IMAGE_REQUIREMENTS := images/hub/requirements.txt
# checkov (tests/test_checkov.py) in a locked environment of its own: checkov 3.3 pins
# packaging<24, which pulumi (>=26) and pytest (>=24) cannot share.
CHECKOV_TOOLS := tests/checkov-tools
# network-config-analyzer (tests/test_flows.py) likewise: it pins PyYAML 6.0.2 exactly, and
# the project's lock has a newer one.
NCA_TOOLS := tests/nca-tools
UV_COMPILE = $(BIN)/uv pip compile --quiet --universal --python-version 3.10 --generate-hashes \
	--custom-compile-command "make lock"

.PHONY: venv checkov-tools nca-tools dashboards lock lock-upgrade test lint format bench cold-start plan prereqs login preview up destroy

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

venv: $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r $(DEV_LOCK)
	$(BIN)/pip install --quiet --require-hashes -r $(HUB_IMAGE_REQUIREMENTS)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@$(BIN)/pip check >/dev/null 2>&1 || { $(BIN)/pip check; \
		echo "the lock files lack a dependency of pyproject.toml: run make lock"; exit 1; }

# Keeps every pin that still satisfies pyproject.toml and resolves only what changed, so the
# same inputs give the same files; `make lock-upgrade` moves everything to the newest releases.
# The Pulumi CLI version (.pulumi.version, read by the workflows) follows the locked SDK.
# Needs only uv, not an installable lock: it also repairs a lock left conflicted by a merge.
lock: $(BIN)/python
	test -x $(BIN)/uv || $(BIN)/pip install --quiet "uv>=0.8,<1"
	printf '%s\n' '$(BUILD_REQUIRES)' | $(UV_COMPILE) $(UV_FLAGS) pyproject.toml - --extra test -o $(DEV_LOCK)
	$(UV_COMPILE) $(UV_FLAGS) pyproject.toml -c $(DEV_LOCK) -o $(RUNTIME_LOCK)
	sed -n 's/^pulumi==\([0-9.]*\).*/\1/p' $(RUNTIME_LOCK) > .pulumi.version
	$(UV_COMPILE) $(UV_FLAGS) $(CHECKOV_TOOLS)/requirements.in -o $(CHECKOV_TOOLS)/requirements.txt
	$(UV_COMPILE) $(UV_FLAGS) $(NCA_TOOLS)/requirements.in -o $(NCA_TOOLS)/requirements.txt

lock-upgrade:
	$(MAKE) lock UV_FLAGS=--upgrade

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Installed again only when its lock changes (the stamp holds the lock it was installed from).
checkov-tools: $(CHECKOV_TOOLS)/.venv/installed-from.txt

$(CHECKOV_TOOLS)/.venv/installed-from.txt: $(CHECKOV_TOOLS)/requirements.txt
	$(PYTHON) -m venv $(CHECKOV_TOOLS)/.venv
	$(CHECKOV_TOOLS)/.venv/bin/pip install --quiet --require-hashes -r $<
	cp $< $@

nca-tools: $(NCA_TOOLS)/.venv/installed-from.txt

$(NCA_TOOLS)/.venv/installed-from.txt: $(NCA_TOOLS)/requirements.txt
	$(PYTHON) -m venv $(NCA_TOOLS)/.venv
	$(NCA_TOOLS)/.venv/bin/pip install --quiet --require-hashes -r $<
	cp $< $@

# pytest exits 5 when it collects nothing; make treats that as a failure, as it should.
test: lint checkov-tools nca-tools
	$(BIN)/python -m pytest

# No credentials, no network: the program runs under Pulumi's mock engine.
plan: venv
	$(BIN)/python -m pangeo_binder.plan --stack "$(STACK)" \
		$(if $(COMPARE),--compare "$(COMPARE)") --format "$(or $(FORMAT),text)"

bench: venv
	$(BIN)/python benchmarks/evaluate.py

# The cold-start model of docs/topics/cold-start.md: a server's wait per user pool, image and
# pull path, from the figures in benchmarks/cold_start.yaml (or FIGURES=your-measurements.yaml).
cold-start: venv
	$(BIN)/python benchmarks/cold_start.py --stack "$(STACK)" \
		$(if $(FIGURES),--figures "$(FIGURES)") --format "$(or $(FORMAT),text)"

# The Pulumi CLI, and the cloud CLIs, auth plugin and logged-in identities of the clouds the
# stack file configures: each missing one is named with the command that fixes it.
prereqs: venv
	@$(BIN)/python -m pangeo_binder.prereqs --stack "$(STACK)"

login: prereqs
	@if [ -n "$$PULUMI_BACKEND_URL" ] || pulumi whoami >/dev/null 2>&1; then \
		echo "using the configured Pulumi backend: $$(pulumi whoami --verbose 2>/dev/null | grep -i 'backend url' || echo $$PULUMI_BACKEND_URL)"; \
	else \
		mkdir -p .pulumi-state && pulumi login "$(LOCAL_BACKEND)"; \
	fi

# The Grafana dashboards' source at its pinned commit, which the program renders when the stack
# has `monitoring` (kept when already fetched; PANGEO_BINDER_DASHBOARDS points elsewhere). With
# STACK set (up, preview) nothing is fetched for a stack without monitoring; a failed download
# is one line naming the fix.
dashboards: venv
	@$(BIN)/python -m pangeo_binder.support.dashboards $(if $(STACK),--stack "$(STACK)")

preview: venv login dashboards
	pulumi stack select --create "$(STACK)"
	PANGEO_POLICY_STACK="$(STACK)" pulumi preview --stack "$(STACK)" --diff --policy-pack policies

up: venv login dashboards
	pulumi stack select --create "$(STACK)"
	pulumi up --stack "$(STACK)"

destroy: login
	pulumi destroy --stack "$(STACK)"
