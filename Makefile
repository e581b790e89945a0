# LiveTDE: the two commands of the README.
#   make run    install what is missing, build, run the daemon on shipped defaults
#   make test   run every test (Swift and Python)
.PHONY: run test build deps

deps:
	scripts/install-deps.sh

build:
	swift build -c release

run: deps build
	scripts/run-default.sh

test: deps
	swift test
	python3 -m pytest -q train eval
