# LiveTDE: the two commands of the README, and installation.
#   make run      install what is missing, build, run the daemon on shipped defaults
#   make test     run every test (Swift and Python)
#   make install  binary, config, model and systemd units under $(DESTDIR)$(PREFIX) (docs/daemon.md)
.PHONY: run test build deps install uninstall

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share/tded
SYSCONFDIR ?= /etc
UNITDIR ?= /etc/systemd/system
DESTDIR ?=
# The binary to install; the default is built first (tests install the debug build).
TDED_BIN ?= .build/release/tded
INSTALL ?= install

deps:
	scripts/install-deps.sh

build:
	swift build -c release

run: deps build
	scripts/run-default.sh

test: deps
	swift test
	python3 -m pytest -q train eval

install: $(if $(filter .build/release/tded,$(TDED_BIN)),build)
	$(INSTALL) -D -m 755 $(TDED_BIN) $(DESTDIR)$(BINDIR)/tded
	$(INSTALL) -D -m 644 models/tded-stream-v1.safetensors $(DESTDIR)$(DATADIR)/models/tded-stream-v1.safetensors
	$(INSTALL) -D -m 644 models/tded-stream-v1.json $(DESTDIR)$(DATADIR)/models/tded-stream-v1.json
	$(INSTALL) -D -m 644 models/tded-gccmask-v10.safetensors $(DESTDIR)$(DATADIR)/models/tded-gccmask-v10.safetensors
	$(INSTALL) -D -m 644 models/tded-gccmask-live-v2.safetensors $(DESTDIR)$(DATADIR)/models/tded-gccmask-live-v2.safetensors
	@# An existing config is the administrator's: never overwritten.
	[ -e $(DESTDIR)$(SYSCONFDIR)/tded/tded.toml ] || \
	  $(INSTALL) -D -m 644 config/tded.toml $(DESTDIR)$(SYSCONFDIR)/tded/tded.toml
	$(INSTALL) -d $(DESTDIR)$(UNITDIR)
	for u in tded.service tded.socket tded-view.service; do \
	  sed -e 's|/usr/local/bin/tded|$(BINDIR)/tded|g' -e 's|/etc/tded/tded.toml|$(SYSCONFDIR)/tded/tded.toml|g' \
	    systemd/$$u > $(DESTDIR)$(UNITDIR)/$$u && chmod 644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/tded $(DESTDIR)$(DATADIR)/models/tded-stream-v1.safetensors \
	  $(DESTDIR)$(DATADIR)/models/tded-stream-v1.json $(DESTDIR)$(DATADIR)/models/tded-gccmask-v10.safetensors \
	  $(DESTDIR)$(DATADIR)/models/tded-gccmask-live-v2.safetensors $(DESTDIR)$(DATADIR)/models/tded-gccmask-v5.safetensors \
	  $(DESTDIR)$(DATADIR)/models/tded-gccmask-v7.safetensors $(DESTDIR)$(DATADIR)/models/tded-gccmask-v8.safetensors \
	  $(DESTDIR)$(DATADIR)/models/tded-gccmask-v9.safetensors \
	  $(DESTDIR)$(UNITDIR)/tded.service $(DESTDIR)$(UNITDIR)/tded.socket $(DESTDIR)$(UNITDIR)/tded-view.service
	-rmdir $(DESTDIR)$(DATADIR)/models $(DESTDIR)$(DATADIR) 2>/dev/null
