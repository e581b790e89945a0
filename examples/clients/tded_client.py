#!/usr/bin/env python3
"""Read tded's live stream from its Unix socket (Python standard library only).

    python3 examples/clients/tded_client.py --socket /run/tded.sock [--count N]

Reconnects when the daemon restarts (or is not there yet), checks each line's schema
version `v` (a version it does not know stops it with exit status 3: fields may be added
within a version, never renamed or removed), and reports `seq` gaps (lines the daemon
skipped for this client because it read too slowly). Output, one line each (the Swift
example client prints the same):

    connected PATH
    update seq=.. t=.. azimuth=.. confidence=.. flags=..
    gap: N lines missed before seq=..
    disconnected
    summary: updates=.. gaps=.. missed=.. reconnects=..
"""
import argparse
import json
import socket
import sys
import time

SCHEMA_VERSION = 1


class UnknownVersion(Exception):
    pass


def lines(path, retry=0.5, on_state=lambda state: None):
    """Yields parsed update dicts forever, reconnecting; on_state('connected'|'disconnected'|'waiting')."""
    waiting = False
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
        except OSError:
            s.close()
            if not waiting:
                on_state("waiting")
                waiting = True
            time.sleep(retry)
            continue
        waiting = False
        on_state("connected")
        buf = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    raw, buf = buf.split(b"\n", 1)
                    try:
                        obj = json.loads(raw)
                    except ValueError:
                        continue
                    if not isinstance(obj, dict) or obj.get("type") == "status":
                        continue
                    if obj.get("v") != SCHEMA_VERSION:
                        raise UnknownVersion(obj.get("v"))
                    yield obj
        except OSError:
            pass
        finally:
            s.close()
        on_state("disconnected")
        time.sleep(retry)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", default="/run/tded.sock")
    ap.add_argument("--count", type=int, default=0, help="exit after this many updates (0 = never)")
    args = ap.parse_args(argv)
    out = lambda s: print(s, flush=True)
    n = {"updates": 0, "gaps": 0, "missed": 0, "connects": 0}
    last = [None]

    def on_state(state):
        if state == "connected":
            n["connects"] += 1
            last[0] = None  # a new connection starts a new run of seq
            out("connected " + args.socket)
        elif state == "disconnected":
            out("disconnected")
        else:
            out("waiting for " + args.socket)

    status = 0
    try:
        for l in lines(args.socket, on_state=on_state):
            seq = l["seq"]
            if last[0] is not None and seq > last[0] + 1:
                n["gaps"] += 1
                n["missed"] += seq - last[0] - 1
                out("gap: %d lines missed before seq=%d" % (seq - last[0] - 1, seq))
            last[0] = seq
            n["updates"] += 1
            az, conf = l.get("azimuth_deg"), l.get("confidence")
            out("update seq=%d t=%.3f azimuth=%s confidence=%s flags=%s" % (
                seq, l["t"], "nan" if az is None else "%+.2f" % az,
                "nan" if conf is None else "%.3f" % conf, ",".join(l.get("flags") or []) or "-"))
            if args.count and n["updates"] >= args.count:
                break
    except UnknownVersion as e:
        print("unknown schema version v=%s (this client knows v=%d); stopping" % (e.args[0], SCHEMA_VERSION),
              file=sys.stderr)
        status = 3
    except KeyboardInterrupt:
        pass
    out("summary: updates=%d gaps=%d missed=%d reconnects=%d" % (
        n["updates"], n["gaps"], n["missed"], max(0, n["connects"] - 1)))
    return status


if __name__ == "__main__":
    sys.exit(main())
