# The two commands of the README. Both set up whatever is missing first (scripts/setup.sh).
SHELL := /bin/bash
.PHONY: start test shell setup

setup:
	@eval "$$(scripts/setup.sh)"

start:
	@eval "$$(scripts/setup.sh)" && "$$CSBOT_RASA_PYTHON" -m bot start

shell:
	@eval "$$(scripts/setup.sh)" && "$$CSBOT_RASA_PYTHON" -m bot shell

test:
	@eval "$$(scripts/setup.sh)" && "$$CSBOT_RASA_PYTHON" -m bot test
