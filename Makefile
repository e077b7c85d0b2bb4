# Two commands: `make demo` and `make test`. Both install what they need first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install system-deps lint clean

demo: install
	$(VENV)/bin/watchfloor demo

# two workers (one test file each at a time): most of the suite waits on real-time peers, not on the CPU
TEST_WORKERS ?= 2
test: install
	$(PY) -m pytest -q -ra -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

install: system-deps $(STAMP)

# Debian packages: the mosquitto broker, chromium (browser tests) and a CJK font (the zh-CN wall).
# Installed when missing and root;
# otherwise say what is missing and go on (the tests that need them say so too).
system-deps:
	@missing=""; \
	command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto mosquitto-clients"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing="$$missing fonts-wqy-microhei"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "watchfloor needs these Debian packages:$$missing"; \
	    echo "  install them with: sudo apt-get install$$missing"; \
	    exit 1; \
	  fi; \
	fi

$(STAMP): pyproject.toml constraints.txt
	@[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
	@touch $(STAMP)

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache
