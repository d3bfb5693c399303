#!/usr/bin/env python3
"""Property check of `floodgate replay --plot`: every bar's counts (its <title>) equal the
decisions of --out whose instants fall in the bar's half-open interval [start, end), recomputed
here from the decisions file, on random traces: unsorted lines, many keys, many instants exactly
on (or a nanosecond before) a minute's or an hour's start.

Usage: bars_match_decisions.py FLOODGATE WORK_DIR SEED
Exits 1 with the first bar that differs."""
import calendar
import random
import re
import subprocess
import sys
import time

floodgate, work, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(seed)
S = 1_000_000_000
base = calendar.timegm((2026, 12, 7, 10, 0, 0)) * S
# The last two cases plot a window of the trace (--from, --to) in bars of a given width (--bar).
cases = [(90 * S, None), (2 * 3600 * S, None), (26 * 3600 * S, None), (9 * 86400 * S, None),
         (2 * 3600 * S, (60, "1m")), (26 * 3600 * S, (600, "10m"))]
for case, (span, bar) in enumerate(cases):
    lines = []
    for i in range(rng.randrange(2000, 20000)):
        t = base + rng.randrange(span)
        if i % 3 == 0:  # On a boundary of a second, a minute or an hour, or a nanosecond before.
            step = rng.choice([S, 60 * S, 3600 * S])
            t = t // step * step - rng.choice([0, 1])
        lines.append(f"{t},client{rng.randrange(300)}")
    rng.shuffle(lines)
    trace = f"{work}/bars{case}.csv"
    with open(trace, "w") as f:
        f.write("time_ns,key\n" + "\n".join(lines) + "\n")
    out, plot = f"{work}/bars{case}.out.csv", f"{work}/bars{case}.svg"
    window = None
    flags = []
    if bar:
        width, text = bar
        start = base + rng.randrange(span // 2) // S * S  # Not on a bar's start, in general.
        window = (start, start + rng.randrange(span // 4, span // 2))
        flags = ["--bar", text, "--from", str(window[0] / S), "--to", f"{window[1] // S}.{window[1] % S:09d}"]
    r = subprocess.run([floodgate, "replay", trace, "--quota", "2/s burst 3", "--out", out,
                        "--plot", plot] + flags, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"replay of case {case} failed: {r.stderr}")
    decisions = []
    with open(out) as f:
        next(f)
        for row in f:
            fields = row.split(",")
            decisions.append((int(fields[0]), fields[3] == "true"))
    bars = re.findall(r"<title>(\S+ \S+) to (\S+ \S+) UTC: (\d+) requests, (\d+) admitted, "
                      r"(\d+) denied</title>", open(plot).read())
    if not bars:
        sys.exit(f"case {case}: no bar titles in {plot}")

    def ns(text):
        whole, _, ms = text.partition(".")
        return calendar.timegm(time.strptime(whole, "%Y-%m-%d %H:%M:%S")) * S + int(ms or 0) * 1_000_000

    if window:  # Only the window's requests are drawn, in bars of the given width.
        decisions = [(t, ok) for t, ok in decisions if window[0] <= t < window[1]]
    counted = 0
    for start_text, end_text, total, admitted, denied in bars:
        start, end = ns(start_text), ns(end_text)
        if bar and end - start != bar[0] * S:
            sys.exit(f"case {case}: a bar from {start_text} to {end_text}, not --bar {bar[1]}")
        inside = [ok for t, ok in decisions if start <= t < end]
        got = (int(total), int(admitted), int(denied))
        want = (len(inside), sum(inside), len(inside) - sum(inside))
        if got != want:
            sys.exit(f"case {case}: the bar {start_text} to {end_text} says {got} "
                     f"(requests, admitted, denied); the decisions in it are {want}")
        counted += want[0]
    if counted != len(decisions):
        sys.exit(f"case {case}: the bars hold {counted} requests of {len(decisions)}")
    print(f"case {case}: {len(bars)} bars of {len(decisions)} decisions, each exact")
