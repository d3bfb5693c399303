#!/usr/bin/env python3
"""Check of the log formats `floodgate replay` reads: the sample access log (Combined Log Format)
is written here again as JSON lines, as Envoy's default access log, as Istio's, and in a custom
nginx log_format, each keyed a different way (the client behind X-Forwarded-For, a nested JSON
member, DOWNSTREAM_REMOTE_ADDRESS without its port). Replayed under one quota, every format must
give the decisions of the Combined log, key for key and line for line; and --include/--exclude
must give the decisions of the log filtered here.

Usage: formats_agree.py FLOODGATE SOURCE_DIR WORK_DIR"""
import csv
import datetime
import gzip
import json
import re
import subprocess
import sys

floodgate, src, work = sys.argv[1], sys.argv[2], sys.argv[3]
QUOTA = "3/s burst 5"
LINE = re.compile(r'(\S+) (\S+) (\S+) \[([^\]]+)\] "(\S+) (\S+) (\S+)" (\d+) (\d+) "([^"]*)" "([^"]*)"')
rows = []
for text in gzip.open(f"{src}/data/access.log.gz", "rt"):
    m = LINE.match(text)
    if not m:
        sys.exit("cannot read the sample log line: " + text)
    client, _, _, when, method, target, proto, status, size, ref, agent = m.groups()
    t = datetime.datetime.strptime(when, "%d/%b/%Y:%H:%M:%S %z").astimezone(datetime.timezone.utc)
    rows.append(dict(client=client, t=t, method=method, target=target, proto=proto,
                     status=status, size=size, ref=ref, agent=agent, line=text.rstrip("\n")))


def replay(name, lines, *flags):
    path = f"{work}/formats.{name}"
    with open(path, "w") as f:
        f.write("".join(line + "\n" for line in lines))
    out = f"{path}.csv"
    r = subprocess.run([floodgate, "replay", path, "--quota", QUOTA, "--out", out, *flags],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"replay of {name} failed ({r.returncode}): {r.stderr}")
    return [(row["time_ns"], row["key"], row["allowed"]) for row in csv.DictReader(open(out))], r.stderr


def iso(t, digits=3):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "0" * digits + "Z"


want, _ = replay("combined", [r["line"] for r in rows])
if len(want) != len(rows):
    sys.exit(f"the Combined replay decided {len(want)} of {len(rows)} lines")
denied = sum(1 for w in want if w[2] == "false")
if denied == 0:
    sys.exit("the quota denies nothing: the comparison would prove little")

formats = {
    "json": ([json.dumps({"ts": r["t"].timestamp(), "req": {"client": r["client"],
                                                            "path": r["target"]},
                          "status": int(r["status"])}) for r in rows],
             ["--key-field", "req.client", "--time-field", "ts"]),
    "envoy": ([f'[{iso(r["t"])}] "{r["method"]} {r["target"]} {r["proto"]}" {r["status"]} - 0 '
               f'{r["size"]} 3 2 "{r["client"]}, 10.0.0.1" "{r["agent"]}" "id-{i}" '
               f'"example.com" "10.0.2.1:80"' for i, r in enumerate(rows)],
              ["--key-field", "xff"]),
    "istio": ([f'[{iso(r["t"])}] "{r["method"]} {r["target"]} {r["proto"]}" {r["status"]} - '
               f'via_upstream - "-" 0 {r["size"]} 3 2 "-" "{r["agent"]}" "id-{i}" '
               f'"example.com" "10.0.2.1:80" outbound|80||web 10.0.0.2:4000 10.0.0.3:80 '
               + (f'[{r["client"]}]:5{i % 9999:04d}' if ":" in r["client"]
                  else f'{r["client"]}:5{i % 9999:04d}') + " - default"
               for i, r in enumerate(rows)],
              ["--log-format", "istio"]),
    "nginx": ([f'{r["t"].isoformat()} {r["client"]} "{r["method"]} {r["target"]} {r["proto"]}" '
               f'{r["status"]} xff="{r["client"]}"' for r in rows],
              ["--log-format", '$time_iso8601 $remote_addr "$request" $status '
                               'xff="$http_x_forwarded_for"', "--key-field", "xff"]),
}
for name, (lines, flags) in formats.items():
    got, _ = replay(name, lines, *flags)
    if got != want:
        diff = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b) if len(got) == len(want) else None
        sys.exit(f"{name}: decisions differ from the Combined log's "
                 f"({len(got)} vs {len(want)} lines; first difference at {diff}: "
                 f"{got[diff] if diff is not None else ''} vs {want[diff] if diff is not None else ''})")
    print(f"{name}: {len(got)} decisions equal the Combined log's ({denied} denied)")

# Filters: the decisions of the lines kept are those of a log holding only them.
keep = [r for r in rows
        if r["method"] in ("GET", "HEAD") and not r["target"].split("?")[0].startswith("/static/")
        and not r["status"].startswith("5")]
want_kept, _ = replay("kept", [r["line"] for r in keep])
got_kept, summary = replay("filtered", [r["line"] for r in rows], "--include", "method=GET,HEAD",
                           "--exclude", "path=/static/*", "--exclude", "status=5??")
if got_kept != want_kept:
    sys.exit(f"filters: {len(got_kept)} decisions differ from the {len(want_kept)} of the log "
             "filtered here")
left_out = f"{len(rows) - len(keep):,}"
if f"filtered  {left_out:>14}" not in summary:
    sys.exit(f"filters: the summary does not count {left_out} lines left out: {summary}")
print(f"filters: {len(got_kept)} decisions equal those of the filtered log; {left_out} left out")
