#!/usr/bin/env python3
"""Check of `floodgate replay --keys-out`: every key's line (requests, denied, the earliest and
latest denial, the most requests in one UTC second with the trace read in order) equals what the
decisions of --out say, recomputed here, on a random trace (unsorted lines, keys that need CSV
quoting); and the lines come most denied first.

Usage: keys_match_decisions.py FLOODGATE WORK_DIR SEED"""
import csv
import random
import subprocess
import sys

floodgate, work, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(seed)
S = 1_000_000_000
base = 1_796_637_600 * S
keys = [f"client{i}" for i in range(200)] + ['a,"quoted" key', "k\u00e9y"]
with open(f"{work}/keys.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["time_ns", "key"])
    for _ in range(30000):
        w.writerow([base + rng.randrange(600 * S), rng.choice(keys[:20]) if rng.random() < 0.7 else rng.choice(keys)])
r = subprocess.run([floodgate, "replay", f"{work}/keys.csv", "--quota", "2/s burst 3",
                    "--out", f"{work}/keys.out.csv", "--keys-out", f"{work}/keys.keys.csv"],
                   capture_output=True, text=True)
if r.returncode != 0:
    sys.exit("replay failed: " + r.stderr)
want = {}
for row in csv.DictReader(open(f"{work}/keys.out.csv", newline="")):
    t, key, ok = int(row["time_ns"]), row["key"], row["allowed"] == "true"
    k = want.setdefault(key, {"requests": 0, "denied": 0, "first": "", "last": "", "second": None,
                              "in": 0, "peak": 0})
    second = t // S
    if second != k["second"]:
        k["second"], k["in"] = second, 0
    k["in"] += 1
    k["peak"] = max(k["peak"], k["in"])
    k["requests"] += 1
    if not ok:
        k["first"] = str(t if k["denied"] == 0 else min(int(k["first"]), t))
        k["last"] = str(t if k["denied"] == 0 else max(int(k["last"]), t))
        k["denied"] += 1
got = list(csv.DictReader(open(f"{work}/keys.keys.csv", newline="")))
if len(got) != len(want):
    sys.exit(f"--keys-out has {len(got)} keys; the decisions have {len(want)}")
for row in got:
    k = want[row["key"]]
    expected = (str(k["requests"]), str(k["denied"]), k["first"], k["last"], str(k["peak"]))
    line = (row["requests"], row["denied"], row["first_denied_ns"], row["last_denied_ns"],
            row["peak_per_second"])
    if line != expected:
        sys.exit(f"key {row['key']!r}: --keys-out says {line}, the decisions {expected}")
denied = [int(row["denied"]) for row in got]
if denied != sorted(denied, reverse=True):
    sys.exit("--keys-out is not the most denied first")
print(f"{len(got)} keys, each equal to its decisions")
