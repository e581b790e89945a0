#!/usr/bin/env python3
"""Latency from audio entering tded to its first effect on a published line, through real ALSA.

Set-up (no sound card needed): an ALSA `file` PCM over the `null` PCM whose capture data comes
from a FIFO (the same set-up as the end-to-end tests). This script writes 16 kHz stereo S16 into
the FIFO in 256-frame periods at real-time pace: silence, then at a random moment a loud noise
burst. The daemon's capture thread is blocked reading the FIFO, so a period is in the ring
microseconds after it is written. A socket client timestamps every line; the first line whose
level_db leaves the silence floor is the burst's first effect.
latency = (receive time of that line) - (write time of the first loud period).
This bounds the ring-to-line latency from above (it includes the FIFO, ALSA and socket hops).

Usage: scripts/measure-latency.py [--trials 20] [--bin .build/release/tded] [--publish-hz 20]
"""
import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

RATE = 16000
PERIOD = 256


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--bin", default=".build/release/tded")
    ap.add_argument("--publish-hz", type=float, default=20.0)
    ap.add_argument("--step", type=int, default=1)
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="tded-lat-")
    fifo = os.path.join(d, "capture.fifo")
    os.mkfifo(fifo)
    conf = os.path.join(d, "asound.conf")
    with open(conf, "w") as f:
        f.write(f'</usr/share/alsa/alsa.conf>\npcm.tdelat {{\n type file\n slave.pcm "null"\n'
                f' file "/dev/null"\n infile "{fifo}"\n format "raw"\n}}\n')
    sock = os.path.join(d, "tded.sock")
    cfg = os.path.join(d, "tded.toml")
    with open(cfg, "w") as f:
        f.write(f'[capture]\ndevice = "tdelat"\nperiod_frames = {PERIOD}\n[engine]\nstep = {a.step}\n'
                f'[publish]\nsocket = "{sock}"\nrate_hz = {a.publish_hz}\n[log]\nlevel = "warning"\n')
    env = dict(os.environ, ALSA_CONFIG_PATH=conf)
    p = subprocess.Popen([a.bin, "run", "--config", cfg], env=env)
    try:
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        lines = []
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(sock)

        def reader():
            buf = b""
            while True:
                try:
                    chunk = c.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                now = time.monotonic()
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    lines.append((now, json.loads(line)))

        threading.Thread(target=reader, daemon=True).start()
        rng = np.random.default_rng(1)
        silence = np.zeros((PERIOD, 2), dtype="<i2").tobytes()
        w = open(fifo, "wb", buffering=0)
        t0 = time.monotonic()
        sent = 0
        onsets = []

        def write_period(data):
            nonlocal sent
            due = t0 + sent / RATE
            dt = due - time.monotonic()
            if dt > 0:
                time.sleep(dt)
            w.write(data)
            sent += PERIOD
            return time.monotonic()

        # settle: 2 s of silence
        for _ in range(2 * RATE // PERIOD):
            write_period(silence)
        for _ in range(a.trials):
            # random extra silence so the onset falls at a random phase of the publish hop
            for _ in range(random.randint(20, 40)):
                write_period(silence)
            first = None
            for k in range(RATE // 2 // PERIOD):  # 0.5 s burst
                x = (rng.normal(0, 0.1, (PERIOD, 2)) * 32767).astype("<i2")
                tw = write_period(x.tobytes())
                if k == 0:
                    first = tw
            onsets.append(first)
            # 1.5 s of silence so the level span (0.1 s) is silent again
            for _ in range(3 * RATE // 2 // PERIOD):
                write_period(silence)
        w.close()
        time.sleep(0.3)
        lat = []
        for on in onsets:
            hit = next((tr for tr, obj in lines if tr >= on - 0.001 and obj["level_db"] > -150), None)
            if hit is not None:
                lat.append((hit - on) * 1000)
        if not lat:
            sys.exit("no burst detected in the published lines")
        lat.sort()
        print(f"trials {len(lat)}/{a.trials}, publish {a.publish_hz} Hz, step {a.step}: "
              f"latency ms min {lat[0]:.1f} median {statistics.median(lat):.1f} "
              f"mean {statistics.mean(lat):.1f} p95 {lat[int(0.95 * (len(lat) - 1))]:.1f} max {lat[-1]:.1f}")
    finally:
        p.terminate()
        p.wait(timeout=5)


if __name__ == "__main__":
    main()
