#!/usr/bin/env python3
"""Long soak of the daemon (issue 13): hours of audio, accelerated, with RSS and fd checks.

Replays a WAV file in a loop as fast as the engine runs (no --realtime: a release build
processes GCC-PHAT step 1 at ~8x real time, step 16 at ~100x), while a reader client keeps
reading, short-lived clients come and go, `status` is polled and SIGHUPs switch settings
(and, with --switch-method, the estimator). Every --every seconds it prints one line of
status counters; at the end it fails (exit 1) when

- the process died or stopped publishing,
- the peak RSS of the last third of the run exceeds that of the first third (after the
  warm-up) by more than --rss-growth-kb (default 4096 KB),
- the open descriptor count grew after the warm-up (a leak of sockets or files),
- any published line carried `null`, or `dropped_frames` grew (non-realtime replay must not drop).

    swift build -c release
    python3 scripts/soak.py --audio-hours 2                 # ~20 min at step 16
    python3 scripts/soak.py --audio-hours 1 --step 1 --switch-method --reloads-per-min 30

Not run by `swift test` (too long); FaultInjectionTests covers each failure path in seconds.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def status(path):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    s.sendall(b"status\n")
    buf = b""
    while True:
        c = s.recv(65536)
        if not c:
            break
        buf += c
        for line in buf.split(b"\n"):
            if b'"type":"status"' in line:
                s.close()
                return json.loads(line)
    s.close()
    return None


def proc_rss_kb(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(ROOT, ".build/release/tded"))
    ap.add_argument("--input", default=os.path.join(ROOT, "examples/demo.wav"))
    ap.add_argument("--audio-hours", type=float, default=1.0, help="stop after this much audio")
    ap.add_argument("--max-wall-min", type=float, default=240, help="stop after this much wall time")
    ap.add_argument("--step", type=int, default=16)
    ap.add_argument("--every", type=float, default=30, help="seconds between report lines")
    ap.add_argument("--reloads-per-min", type=float, default=6)
    ap.add_argument("--switch-method", action="store_true", help="SIGHUPs alternate gcc-phat / learned")
    ap.add_argument("--rss-growth-kb", type=int, default=4096)
    ap.add_argument("--warmup-s", type=float, default=60)
    a = ap.parse_args()

    d = tempfile.mkdtemp(prefix="tded-soak-")
    sock, cfg = os.path.join(d, "s.sock"), os.path.join(d, "tded.toml")

    def write_config(i):
        method = "learned" if a.switch_method and i % 2 else "gcc-phat"
        step = a.step if method == "gcc-phat" else 8
        rate = 20 if i % 2 == 0 else 10
        with open(cfg, "w") as f:
            f.write(f'[engine]\nmethod = "{method}"\nstep = {step}\n[publish]\nsocket = "{sock}"\nrate_hz = {rate}\n'
                    f'client_queue_lines = 100000\nmax_skipped_lines = 10000000\n')

    write_config(0)
    err = open(os.path.join(d, "tded.err"), "w")
    p = subprocess.Popen([a.binary, "run", "--config", cfg, "--input", a.input, "--loop", "0"],
                         stdout=subprocess.DEVNULL, stderr=err)
    t0 = time.time()
    while not os.path.exists(sock):
        if p.poll() is not None or time.time() - t0 > 30:
            sys.exit(f"daemon did not start: {open(err.name).read()}")
        time.sleep(0.05)
    reader = subprocess.Popen(["nc", "-U", sock], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    os.set_blocking(reader.stdout.fileno(), False)
    nulls, lines, tail = 0, 0, b""
    reloads, base_rss, base_fds, first_drop = 0, None, None, None
    next_report = next_reload = time.time()
    failures = []
    rss_after = []  # RSS samples after the warm-up
    print("wall_s audio_h rss_kb heap_in_use_kb heap_free_kb fds reloads lines clients_total dropped_frames", flush=True)
    while True:
        now = time.time()
        chunk = reader.stdout.read() or b""
        data = tail + chunk
        parts = data.split(b"\n")
        tail = parts[-1]
        for ln in parts[:-1]:
            lines += 1
            if b"null" in ln:
                nulls += 1
        if p.poll() is not None:
            failures.append(f"daemon exited with {p.returncode}")
            break
        if a.reloads_per_min > 0 and now >= next_reload:
            reloads += 1
            write_config(reloads)
            p.send_signal(signal.SIGHUP)
            next_reload = now + 60 / a.reloads_per_min
            # a short-lived client and a status request each time
            try:
                c = socket.socket(socket.AF_UNIX)
                c.connect(sock)
                c.recv(100)
                c.close()
            except OSError as e:
                failures.append(f"connect failed: {e}")
        if now >= next_report:
            next_report = now + a.every
            st = status(sock)
            if st is None:
                failures.append("no status reply")
                break
            rss, fds = proc_rss_kb(p.pid), len(os.listdir(f"/proc/{p.pid}/fd"))
            audio_h = st["audio_s"] / 3600
            print(f"{now - t0:.0f} {audio_h:.3f} {rss} {st.get('heap_in_use_kb')} {st.get('heap_free_kb')} {fds} "
                  f"{reloads} {lines} {st['clients_total']} {st['dropped_frames']}", flush=True)
            if now - t0 >= a.warmup_s and base_rss is None:
                base_rss, base_fds, first_drop = rss, fds, st["dropped_frames"]
            if base_rss is not None:
                rss_after.append(rss)
                # +2: the soak's own short-lived client and status connections may be open
                if fds > base_fds + 2:
                    failures.append(f"descriptor count grew {base_fds} -> {fds}")
                if st["dropped_frames"] != first_drop:
                    failures.append("frames dropped")
            if failures or audio_h >= a.audio_hours or now - t0 >= a.max_wall_min * 60:
                break
        time.sleep(0.2)
    reader.kill()
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            failures.append("did not stop within 10 s of SIGTERM")
    # Compare peaks (RSS differs legitimately between the two methods with --switch-method):
    # the peak of the last third may not exceed the peak of the first third by the bound.
    if len(rss_after) >= 3:
        k = len(rss_after) // 3
        growth = max(rss_after[-k:]) - max(rss_after[:k])
        print(f"peak RSS after warm-up: first third {max(rss_after[:k])} KB, last third {max(rss_after[-k:])} KB")
        if growth > a.rss_growth_kb:
            failures.append(f"peak RSS grew {growth} KB after the warm-up")
    if nulls:
        failures.append(f"{nulls} lines carried null")
    if lines == 0:
        failures.append("no lines received")
    if failures:
        print("FAIL: " + "; ".join(sorted(set(failures))), file=sys.stderr)
        print(f"daemon log: {err.name}", file=sys.stderr)
        sys.exit(1)
    print(f"OK: {lines} lines, {reloads} reloads, log {err.name}")


if __name__ == "__main__":
    main()
