#!/usr/bin/env bash
# Checks `make install`: installs into a temporary DESTDIR (with TDED_BIN, default the release
# build), checks the tree and the paths written into the units, then runs the installed binary
# from outside the repository (no $TDED_MODEL) and checks that it finds the installed model.
# Also: a second install keeps an edited config; `make uninstall` removes all but the config.
# Exit status 0 when every check passes; otherwise one line per failure and status 1.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BIN=${TDED_BIN:-.build/release/tded}
[ -x "$BIN" ] || { echo "test-install: no binary at $BIN (build first, or set TDED_BIN)" >&2; exit 1; }
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
D=$(mktemp -d "${TMPDIR:-/tmp}/tded-install.XXXXXX")
trap 'rm -rf "$D"' EXIT
fail=0
check() { if ! eval "$1"; then echo "test-install: FAILED: $2" >&2; fail=1; fi; }

make -s -C "$REPO" install DESTDIR="$D/root" PREFIX=/opt/tded SYSCONFDIR=/etc TDED_BIN="$BIN" >/dev/null
R=$D/root
for f in opt/tded/bin/tded opt/tded/share/tded/models/tded-stream-v1.safetensors \
         opt/tded/share/tded/models/tded-stream-v1.json opt/tded/share/tded/models/tded-gccmask-v10.safetensors \
         opt/tded/share/tded/models/tded-gccmask-live-v2.safetensors etc/tded/tded.toml \
         etc/systemd/system/tded.service etc/systemd/system/tded.socket etc/systemd/system/tded-view.service; do
  check "[ -f '$R/$f' ]" "$f not installed"
done
check "[ -x '$R/opt/tded/bin/tded' ]" "bin/tded not executable"
check "cmp -s '$R/etc/tded/tded.toml' config/tded.toml" "config differs from config/tded.toml"
check "grep -q '^ExecStart=/opt/tded/bin/tded run --config /etc/tded/tded.toml' '$R/etc/systemd/system/tded.service'" \
      "tded.service ExecStart does not name the installed binary"
check "grep -q '^ExecStart=/opt/tded/bin/tded view' '$R/etc/systemd/system/tded-view.service'" \
      "tded-view.service ExecStart does not name the installed binary"
check "! grep -rq '/usr/local/bin/tded' '$R/etc/systemd/system/'" "a unit still names /usr/local/bin/tded"

# The installed binary, run outside the repository, finds the installed model (prefix-relative).
mkdir -p "$D/elsewhere"
sox -q examples/demo.wav "$D/elsewhere/clip.wav" trim 0 1.2
out=$(cd "$D/elsewhere" && env -u TDED_MODEL "$R/opt/tded/bin/tded" analyze --method learned --whole clip.wav 2>&1) || true
check "grep -q '\"method\":\"learned\"' <<<\"\$out\"" "installed tded did not find the installed model: $out"
out=$(cd "$D/elsewhere" && env -u TDED_POOLING_MODEL "$R/opt/tded/bin/tded" analyze --whole --pooling learned clip.wav 2>&1) || true
check "grep -q '\"delay_ms\"' <<<\"\$out\"" "installed tded did not find the installed pooling model: $out"
check "(cd '$D/elsewhere' && '$R/opt/tded/bin/tded' --check-config '$R/etc/tded/tded.toml' >/dev/null 2>&1)" \
      "the installed config does not pass the installed binary's --check-config"

# An edited config survives a second install; uninstall keeps it and removes the rest.
echo "# edited" >> "$R/etc/tded/tded.toml"
make -s -C "$REPO" install DESTDIR="$D/root" PREFIX=/opt/tded TDED_BIN="$BIN" >/dev/null
check "tail -1 '$R/etc/tded/tded.toml' | grep -q edited" "a second install overwrote the config"
make -s -C "$REPO" uninstall DESTDIR="$D/root" PREFIX=/opt/tded >/dev/null
check "[ ! -e '$R/opt/tded/bin/tded' ] && [ ! -e '$R/etc/systemd/system/tded.service' ] && [ ! -e '$R/opt/tded/share/tded/models/tded-stream-v1.safetensors' ] && [ ! -e '$R/opt/tded/share/tded/models/tded-gccmask-v10.safetensors' ] && [ ! -e '$R/opt/tded/share/tded/models/tded-gccmask-live-v2.safetensors' ]" \
      "uninstall left files behind"
check "[ -f '$R/etc/tded/tded.toml' ]" "uninstall removed the config"
[ $fail -eq 0 ] && echo "test-install: ok ($R)"
exit $fail
