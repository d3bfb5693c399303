#!/usr/bin/env python3
"""Check of `floodgate replay --report`: the page is loaded in a real headless Chromium (Debian's
chromium), which must report no console message (an error would be one) and run the page's
script (it marks the body data-ready="1", and sorts the keys table as the #sort= fragment asks).
The numbers the page shows, read from the DOM Chromium built, must equal the CSV outputs of the
same run: the summary those of --out, the keys table --keys-out, the sweep table --sweep-out;
and for a replay of a whole configuration, the rules' counts those of the decisions' descriptor
statuses. The page must name no resource outside itself.

Usage: report_test.py FLOODGATE SOURCE_DIR WORK_DIR"""
import csv
import gzip
import html.parser
import os
import re
import shutil
import subprocess
import sys

floodgate, src, work = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(work, exist_ok=True)
chromium = shutil.which("chromium")
if chromium is None:
    sys.exit("chromium is not installed (scripts/install-deps.sh installs it)")
log = f"{work}/access.log"
with gzip.open(f"{src}/data/access.log.gz", "rb") as f, open(log, "wb") as out:
    out.write(f.read())


class Dom(html.parser.HTMLParser):
    """The tables of a page: per table id, its rows as lists of cells' data-value (or text), and
    the summary's rows by data-field."""

    def __init__(self):
        super().__init__()
        self.tables, self.fields, self.body = {}, {}, {}
        self.table, self.row, self.cell, self.field = None, None, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        elif tag == "table":
            self.table = a.get("id")
            self.tables.setdefault(self.table, [])
        elif tag == "tr" and self.table is not None:
            self.row, self.field = [], a.get("data-field")
        elif tag == "td" and self.row is not None:
            self.cell = a.get("data-value")
            self.row.append(self.cell)

    def handle_endtag(self, tag):
        if tag == "tr" and self.row is not None:
            if self.row:
                self.tables[self.table].append(self.row)
                if self.field:
                    self.fields[self.field] = int(self.row[0])
            self.row = None
        elif tag == "table":
            self.table = None


def load(page, fragment=""):
    """Loads `page` in Chromium and returns its DOM, failing on any console message."""
    r = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-background-networking", "--disable-extensions",
                        "--enable-logging=stderr", "--v=0", "--dump-dom",
                        f"file://{page}{fragment}"],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        sys.exit(f"chromium failed ({r.returncode}): {r.stderr[-2000:]}")
    console = [line for line in r.stderr.splitlines() if "CONSOLE" in line]
    if console:
        sys.exit("the page logged to the console: " + "\n".join(console))
    dom = Dom()
    dom.feed(r.stdout)
    if dom.body.get("data-ready") != "1":
        sys.exit("the page's script did not run to its end (no data-ready on body)")
    return dom


def replay(name, *flags):
    r = subprocess.run([floodgate, "replay", log, "--out", f"{work}/{name}.csv",
                        "--report", f"{work}/{name}.html", *flags], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"replay {name} failed ({r.returncode}): {r.stderr}")
    page = open(f"{work}/{name}.html").read()
    # Self-contained: nothing to fetch (the SVG namespace is a name, not a request).
    outside = set(re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page)) | set(
        u for u in re.findall(r"(?:https?:)?//[\w.-]+[^\s\"'<)]*", page)
        if "www.w3.org/2000/svg" not in u)
    if outside:
        sys.exit(f"{name}: the page names resources outside itself: {sorted(outside)[:5]}")
    return list(csv.DictReader(open(f"{work}/{name}.csv", newline="")))


def expect(what, got, want):
    if got != want:
        sys.exit(f"{what}: the page shows {got!r}, the CSV says {want!r}")


def check_summary(dom, decisions):
    denied = [d for d in decisions if d["allowed"] == "false"]
    expect("requests", dom.fields.get("requests"), len(decisions))
    expect("admitted", dom.fields.get("admitted"), len(decisions) - len(denied))
    expect("denied", dom.fields.get("denied"), len(denied))
    expect("keys denied", dom.fields.get("keys_denied"), len({d["key"] for d in denied}))


# A replay under a quota, with per-key quotas, a sweep and every key.
decisions = replay("plain", "--quota", "5/s burst 20", "--quotas", f"{src}/data/quotas.txt",
                   "--sweep", "1/s burst 5,5/s burst 20,10/s burst 50",
                   "--sweep-out", f"{work}/plain.sweep.csv", "--keys-out", f"{work}/plain.keys.csv")
dom = load(f"{work}/plain.html", "#sort=keys:1:asc")
check_summary(dom, decisions)
keys = {r["key"]: (int(r["requests"]), int(r["denied"]), r["first_denied_ns"], r["last_denied_ns"],
                   int(r["peak_per_second"]))
        for r in csv.DictReader(open(f"{work}/plain.keys.csv", newline=""))}
rows = dom.tables.get("keys", [])
shown = {r[0]: (int(r[1]), int(r[2]), r[3], r[4], int(r[5])) for r in rows}
expect("keys", shown, keys)
requests = [int(r[1]) for r in rows]
if requests != sorted(requests) or requests == sorted(requests, reverse=True):
    sys.exit("the keys table is not sorted by requests as #sort=keys:1:asc asks")
sweep = [(r["quota"], int(r["denied"]), int(r["keys_denied"]), r["most_denied"])
         for r in csv.DictReader(open(f"{work}/plain.sweep.csv", newline=""))]
expect("sweep", [(r[0], int(r[1]), int(r[3]), r[4]) for r in dom.tables.get("sweep", [])], sweep)
print(f"plain: summary, {len(keys)} keys and {len(sweep)} sweep rows as the CSVs say; "
      "sorted by the fragment")

# A replay of a whole configuration: the rules' counts are the decisions' statuses.
decisions = replay("config", "--config", f"{src}/data/edge.yaml", "--domain", "edge",
                   "--descriptor", "remote_address=$client",
                   "--descriptor", "path=$path,remote_address=$client",
                   "--descriptor", "generic_key=global")
dom = load(f"{work}/config.html")
check_summary(dom, decisions)
statuses = [s for d in decisions for s in d["descriptors"].split(";")]
rules = dom.tables.get("rules", [])
if len(rules) != 5:
    sys.exit(f"expected the 5 rules of data/edge.yaml, the page has {len(rules)}")
expect("over the limit, all rules", sum(int(r[3]) for r in rules), statuses.count("over"))
expect("shadowed, all rules", sum(int(r[4]) for r in rules), statuses.count("shadow"))
limited = {r[0]: r for r in rules}
expect("hits of the global rule", int(limited["edge.generic_key_global"][2]), len(decisions))
print(f"config: summary and {len(rules)} rules as the decisions say; no console message")
