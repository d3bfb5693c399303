#include "floodgate/replay/report.h"

#include <cstdio>
#include <ctime>
#include <string_view>

#include "floodgate/core/internal/format.h"
#include "floodgate/replay/summary.h"

namespace floodgate::replay {
namespace {

using internal::percent;
using internal::with_commas;

// An instant as UTC to the millisecond, "2026-11-27 13:00:00.250".
std::string utc(std::int64_t ns) {
  const std::int64_t s = ns / 1'000'000'000 - (ns % 1'000'000'000 < 0 ? 1 : 0);
  const std::int64_t ms = (ns - s * 1'000'000'000) / 1'000'000;
  const std::time_t t = static_cast<std::time_t>(s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[48];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03lld", static_cast<long long>(ms));
  return buf;
}

// A numeric cell: the number with commas, its exact value for sorting and reading.
std::string number_cell(std::uint64_t n) {
  return "<td class=\"n\" data-value=\"" + std::to_string(n) + "\">" + with_commas(n) + "</td>";
}

// A text cell, its text also its sort value; `css_class` "k" for keys (monospace, wrapped).
std::string text_cell(std::string_view text, std::string_view css_class = "") {
  const std::string escaped = escape_xml(text);
  return "<td" + (css_class.empty() ? std::string() : " class=\"" + std::string(css_class) + "\"") +
         " data-value=\"" + escaped + "\">" + escaped + "</td>";
}

// A header row; `numeric` says which columns sort as numbers.
std::string header(std::initializer_list<std::pair<const char*, bool>> columns) {
  std::string out = "<thead><tr>";
  for (const auto& [name, numeric] : columns) {
    out += std::string("<th data-type=\"") + (numeric ? "num" : "text") + "\">" + name + "</th>";
  }
  return out + "</tr></thead>";
}

constexpr std::string_view kStyle = R"(
body { font-family: sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1.05em; margin-top: 1.5em; }
.sub { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #eee; text-align: left; }
td.n, th[data-type="num"] { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f4f4f4; cursor: pointer; user-select: none; white-space: nowrap; }
th[aria-sort="ascending"]::after { content: " \25B2"; }
th[aria-sort="descending"]::after { content: " \25BC"; }
td.k { font-family: monospace; word-break: break-all; }
td:not(.k) { white-space: nowrap; }
.note { color: #555; font-size: 0.9em; }
svg { max-width: 100%; height: auto; }
)";

// Sorts a table by a column when its header is clicked (again: the other way), and as the
// fragment #sort=TABLE:COLUMN:asc|desc says when the page opens.
constexpr std::string_view kScript = R"(
'use strict';
function sortTable(table, column, descending) {
  const body = table.tBodies[0];
  const numeric = table.tHead.rows[0].cells[column].dataset.type === 'num';
  const rows = Array.from(body.rows);
  const value = (row) => row.cells[column].dataset.value;
  rows.sort((a, b) => {
    let order;
    if (numeric) {
      const x = BigInt(value(a) === '' ? '-9223372036854775808' : value(a));
      const y = BigInt(value(b) === '' ? '-9223372036854775808' : value(b));
      order = x < y ? -1 : x > y ? 1 : 0;
    } else {
      order = value(a) < value(b) ? -1 : value(a) > value(b) ? 1 : 0;
    }
    return descending ? -order : order;
  });
  for (const row of rows) body.appendChild(row);
  Array.from(table.tHead.rows[0].cells).forEach((th, i) => {
    if (i === column) th.setAttribute('aria-sort', descending ? 'descending' : 'ascending');
    else th.removeAttribute('aria-sort');
  });
}
for (const table of document.querySelectorAll('table.sortable')) {
  Array.from(table.tHead.rows[0].cells).forEach((th, i) => {
    th.addEventListener('click', () => {
      sortTable(table, i, th.getAttribute('aria-sort') === 'ascending');
    });
  });
}
const wanted = /^#sort=([A-Za-z0-9_-]+):([0-9]+):(asc|desc)$/.exec(location.hash);
if (wanted) {
  const table = document.getElementById(wanted[1]);
  const column = Number(wanted[2]);
  if (table && table.classList.contains('sortable') && column < table.tHead.rows[0].cells.length) {
    sortTable(table, column, wanted[3] === 'desc');
  }
}
document.body.dataset.ready = '1';
)";

}  // namespace

std::string render_report(const Report& r) {
  std::string html = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  // Nothing is fetched: the page is one file, its style and script inline.
  html +=
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
      "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n";
  html += "<title>" + escape_xml(r.title) + "</title>\n<style>" + std::string(kStyle) +
          "</style>\n</head>\n<body>\n";
  html +=
      "<h1>" + escape_xml(r.title) + "</h1>\n<p class=\"sub\">" + escape_xml(r.subtitle) + "</p>\n";

  html += "<h2>Summary</h2>\n<table id=\"summary\"><tbody>\n";
  for (const Report::Figure& f : r.summary) {
    html += "<tr data-field=\"" + escape_xml(f.field) + "\"><th>" + escape_xml(f.label) + "</th>" +
            number_cell(f.value) + "<td>" + escape_xml(f.note) + "</td></tr>\n";
  }
  html += "</tbody></table>\n";
  if (!r.svg.empty()) html += "<h2>Over time</h2>\n" + r.svg + "\n";

  if (!r.rules.empty()) {
    html +=
        "<h2>Rules</h2>\n<p class=\"note\">Each rule that requests met: the request "
        "descriptors it limited (hits), those over its limit and refused, and those over it in "
        "shadow mode (answered OK).</p>\n<table id=\"rules\" class=\"sortable\">" +
        header({{"rule", false},
                {"limit", false},
                {"hits", true},
                {"over limit", true},
                {"shadowed", true}}) +
        "<tbody>\n";
    for (const Report::Rule& rule : r.rules) {
      html += "<tr>" + text_cell(rule.id) + text_cell(rule.limit) + number_cell(rule.hits) +
              number_cell(rule.over) + number_cell(rule.shadowed) + "</tr>\n";
    }
    html += "</tbody></table>\n";
    for (std::size_t i = 0; i < r.rules.size(); ++i) {
      const Report::Rule& rule = r.rules[i];
      html += "<h3>" + escape_xml(rule.id) + " (" + escape_xml(rule.limit) + ")</h3>\n";
      html += "<p>" + with_commas(rule.hits) + " hits, " + with_commas(rule.over) +
              " over the limit (" + percent(rule.over, rule.hits) + "), " +
              with_commas(rule.shadowed) + " shadowed.</p>\n";
      if (!rule.most_limited.empty()) {
        html += "<table id=\"rule-" + std::to_string(i) + "\" class=\"sortable limited\">" +
                header({{"value", false}, {"limited", true}}) + "<tbody>\n";
        for (const auto& [value, count] : rule.most_limited) {
          html += "<tr>" + text_cell(value, "k") + number_cell(count) + "</tr>\n";
        }
        html += "</tbody></table>\n";
      }
      if (!rule.svg.empty()) html += rule.svg + "\n";
    }
  }

  if (!r.sweep.empty()) {
    html += "<h2>Which quota?</h2>\n<p class=\"note\">The same " + with_commas(r.requests) +
            " requests under each quota of --sweep.</p>\n<table id=\"sweep\" class=\"sortable\">" +
            header({{"quota", false},
                    {"denied", true},
                    {"denied %", true},
                    {"keys denied", true},
                    {"most denied keys", false}}) +
            "<tbody>\n";
    for (const Report::SweepRow& row : r.sweep) {
      // The share in hundredths of a percent, as an integer, so that it sorts exactly.
      const std::uint64_t basis = r.requests == 0 ? 0 : row.denied * 10'000 / r.requests;
      html += "<tr>" + text_cell(row.quota) + number_cell(row.denied) + "<td class=\"n\" " +
              "data-value=\"" + std::to_string(basis) + "\">" + percent(row.denied, r.requests) +
              "</td>" + number_cell(row.keys_denied) + text_cell(row.most_denied, "k") + "</tr>\n";
    }
    html += "</tbody></table>\n";
  }

  html += "<h2>Keys</h2>\n";
  if (!r.keys_asked) {
    html += "<p class=\"note\">Not counted for this report.</p>\n";
  } else {
    html += "<p class=\"note\">" +
            (r.keys.size() < r.keys_total
                 ? "The " + with_commas(r.keys.size()) + " most denied of " +
                       with_commas(r.keys_total) + " keys (--keys-out writes them all)."
                 : with_commas(r.keys_total) + " keys, the most denied first.") +
            " Click a column to sort by it. Times are UTC; peak/s is the most requests in one "
            "second.</p>\n<table id=\"keys\" class=\"sortable\">" +
            header({{"key", false},
                    {"requests", true},
                    {"denied", true},
                    {"first denied", true},
                    {"last denied", true},
                    {"peak/s", true}}) +
            "<tbody>\n";
    for (const Report::Key& k : r.keys) {
      const auto when = [&](std::int64_t ns) {
        return k.denied == 0 ? std::string("<td class=\"n\" data-value=\"\"></td>")
                             : "<td class=\"n\" data-value=\"" + std::to_string(ns) + "\">" +
                                   utc(ns) + "</td>";
      };
      html += "<tr>" + text_cell(k.key, "k") + number_cell(k.requests) + number_cell(k.denied) +
              when(k.first_denied) + when(k.last_denied) + number_cell(k.peak_per_second) +
              "</tr>\n";
    }
    html += "</tbody></table>\n";
  }
  html += "<p class=\"note\">Made by " + escape_xml(r.generator) + ".</p>\n";
  html += "<script>" + std::string(kScript) + "</script>\n</body>\n</html>\n";
  return html;
}

}  // namespace floodgate::replay
