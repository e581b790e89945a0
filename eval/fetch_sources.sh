#!/usr/bin/env bash
# Fetch dry source audio for the TDE-Simulation generator from Debian packages (no install:
# apt-get download + dpkg -x), convert to mono 16 kHz WAV under data/sources/{speech,music}.
# Nothing fetched here is ever committed (data/ is gitignored).
#
#   eval/fetch_sources.sh            speech (pocketsphinx-testdata, fillets-ng Czech dialogue,
#                                    tuxpaint spoken stamp descriptions, 11 languages) and music
#                                    (fretsonfire muldjord songs, drascula soundtrack); ~300 MB of
#                                    downloads, a few minutes
#   eval/fetch_sources.sh --minimal  pocketsphinx-testdata only (3.6 MB; enough for the small set)
#
# Every piece must have its 99 % spectral roll-off >= 3 kHz (eval/sources.py MIN_ROLLOFF_HZ):
# the fillets-ng Dutch lines are all ~1 kHz wide, so that package is not used.
#
# If a package cannot be fetched the script says so and goes on; the generator falls back to
# espeak-ng synthetic speech when data/sources/speech ends up empty.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="${TDE_SOURCES:-data/sources}"
WORK="data/debs"
MINIMAL=0
[ "${1:-}" = "--minimal" ] && MINIMAL=1
mkdir -p "$WORK" "$ROOT"

fetch() {  # fetch PKG -> prints the extracted dir, or nothing on failure
  local pkg="$1" dir="$WORK/x_$1"
  if [ ! -d "$dir" ]; then
    ( cd "$WORK" && ls "${pkg}"_*.deb >/dev/null 2>&1 || apt-get download "$pkg" >/dev/null 2>&1 ) \
      || { echo "fetch_sources: could not download $pkg (skipped)" >&2; return 1; }
    local deb
    deb=$(ls "$WORK/${pkg}"_*.deb 2>/dev/null | head -1)
    [ -n "$deb" ] || { echo "fetch_sources: no .deb for $pkg (skipped)" >&2; return 1; }
    mkdir -p "$dir" && dpkg -x "$deb" "$dir" || { echo "fetch_sources: cannot unpack $deb" >&2; return 1; }
  fi
  echo "$dir"
}

imp() {  # imp INTO PREFIX [opts] -- files...
  python3 eval/sources.py --root "$ROOT" "$@"
}

if d=$(fetch pocketsphinx-testdata); then
  mapfile -t f < <(find "$d" \( -name '*.wav' -o -name '*.raw' \) | sort)
  [ ${#f[@]} -gt 0 ] && imp --into speech --prefix pocketsphinx --import "${f[@]}"
fi

if [ $MINIMAL = 0 ]; then
  for lang in cs; do  # fillets-ng-data-nl: every line is ~1 kHz wide, all dropped by the gate
    if d=$(fetch fillets-ng-data-$lang); then
      mapfile -t f < <(find "$d" -name '*.ogg' | sort)
      [ ${#f[@]} -gt 0 ] && imp --into speech --prefix fillets_$lang --max-files 300 --import "${f[@]}"
    fi
  done
  if d=$(fetch tuxpaint-stamps-default); then
    mapfile -t f < <(find "$d" -name '*_desc*.ogg' | sort)
    [ ${#f[@]} -gt 0 ] && imp --into speech --prefix tuxpaint --max-files 900 --min-seconds 0.8 --import "${f[@]}"
  fi
  if d=$(fetch fretsonfire-songs-muldjord); then
    mapfile -t f < <(find "$d" -name 'song.ogg' | sort)
    [ ${#f[@]} -gt 0 ] && imp --into music --prefix fof --chunk-seconds 6 --chunks-per-file 12 --import "${f[@]}"
  fi
  if d=$(fetch drascula-music); then
    mapfile -t f < <(find "$d" -path '*/audio/*.ogg' | sort)
    [ ${#f[@]} -gt 0 ] && imp --into music --prefix drascula --chunk-seconds 6 --chunks-per-file 4 --import "${f[@]}"
  fi
fi
python3 eval/sources.py --root "$ROOT"
