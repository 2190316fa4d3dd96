"""Small helpers shared by kwire's client scripts (one script per client library).

The scripts run real Kafka client libraries against a real broker while `cargo xtask capture`
records the loopback traffic. They print what they did and saw as `FACT {json}` lines on stdout
(xtask collects them into tests/fixtures/harness/<scenario>.facts.json); everything else goes to
stderr. Every wait has a deadline: a hung broker must fail the run, never hang it.
"""

import json
import sys
import time


# A script started by another one (see alert_stories.py stale-owner) counts from its parent's start:
# the parent passes its own elapsed seconds in KWIRE_FACT_T0, so relayed facts stay in one time line.
_START = time.monotonic() - float(__import__("os").environ.get("KWIRE_FACT_T0", "0"))


def fact(kind, **fields):
    """One machine-readable observation, e.g. fact("produced", client_id="kw-acks0", ...).

    `elapsed` is seconds since the script started: it orders facts and shows where time goes.
    """
    elapsed = round(time.monotonic() - _START, 2)
    print("FACT " + json.dumps({"fact": kind, "elapsed": elapsed, **fields}, sort_keys=True),
          flush=True)


def log(*args):
    print(*args, file=sys.stderr, flush=True)


class Deadline:
    """`with`-less deadline: `d = Deadline(20, "assignment"); while ...: d.check()`."""

    def __init__(self, seconds, what):
        self.seconds = seconds
        self.what = what
        self.end = time.monotonic() + seconds

    def left(self):
        return max(0.0, self.end - time.monotonic())

    def check(self):
        if time.monotonic() > self.end:
            raise TimeoutError(f"timed out after {self.seconds}s waiting for {self.what}")


def value(client_id, i, size=0):
    """Short, recognisable record values: `<client id>-<n>`, padded to `size` bytes with a
    repeating (so compressible) pattern when size is given."""
    v = f"{client_id}-{i}"
    if size > len(v):
        v = (v + "|" + "kwire" * size)[:size]
    return v.encode()


def partitions_of(n_partitions, count, counts=None):
    """Which partition each record goes to, known in advance: record i to partition
    i % n_partitions; or, with counts="1,2,3", counts[p] records to partition p, in order."""
    if counts:
        return [p for p, n in enumerate(int(c) for c in counts.split(",")) for _ in range(n)]
    return [i % n_partitions for i in range(count)]


def mock_control_path(bootstrap):
    """The control socket of the kwire-mockbroker serving `bootstrap` (see tests/mockbroker):
    `<tmp>/kwire-mockbroker-<port of the first broker>.sock`."""
    import os
    import tempfile
    port = bootstrap.split(",")[0].rsplit(":", 1)[1]
    return os.path.join(tempfile.gettempdir(), f"kwire-mockbroker-{port}.sock")


def mock(bootstrap, *commands):
    """Runs mock-cluster commands (fault injection, e.g. "partition_leader T 0 2") in the middle of
    a story, through the mock broker's control socket; fails on an ERR reply. Each command is
    recorded as a FACT so the story in the facts file shows when the fault was injected. Returns
    the replies (what followed OK)."""
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(mock_control_path(bootstrap))
    f = s.makefile("rw")
    out = []
    try:
        for c in commands:
            f.write(c + "\n")
            f.flush()
            r = f.readline().strip()
            if r != "OK" and not r.startswith("OK "):
                raise RuntimeError(f"mock broker: {c!r} -> {r!r}")
            fact("mock", command=c)
            out.append(r[3:])
    finally:
        f.close()
        s.close()
    return out
