#!/usr/bin/env python3
"""Doxygen's input filter for floodgate's headers (docs/api/Doxyfile): the contracts are plain
`//` comments, as the conventions ask; doxygen reads only `///`. This turns, for doxygen alone:
  - a header's opening comment block into the file's documentation (`/// @file`);
  - a comment block directly above a declaration into that declaration's documentation;
  - a comment after a member or enumerator on its line into its documentation (`///<`).
A comment block followed by a blank line stays a plain comment. Prints the file to stdout."""
import re
import sys

lines = open(sys.argv[1], encoding="utf-8", errors="replace").read().split("\n")


def doc(text):
    """Comment text as doxygen reads it literally: its command and markup characters escaped."""
    return (text.replace("\\", "\\\\").replace("@", "\\@").replace("<", "\\<")
            .replace(">", "\\>").replace("#", "\\#").replace("%", "\\%"))
out = []
i = 0
n = len(lines)
comment = re.compile(r"^(\s*)//(?!/)( ?)(.*)$")
trailing = re.compile(r"^(\s*[^/\s}].*?[;,{])(\s{2,})//(?!/) (?!NOLINT)(.*)$")


def as_doc(line):
    """A comment line as documentation: `// text` -> `/// text`."""
    m = comment.match(line)
    return m.group(1) + "/// " + doc(m.group(3))


def with_trailing_doc(line):
    """A code line whose trailing comment documents its member: `x;  // text` -> `x;  ///< text`."""
    t = trailing.match(line)
    return f"{t.group(1)}{t.group(2)}///< {doc(t.group(3))}" if t else line


first_code = next((k for k, l in enumerate(lines) if l.strip() and not l.strip().startswith("//")), n)
while i < n:
    m = comment.match(lines[i])
    if m:
        # The whole block of comment lines.
        j = i
        while j < n and comment.match(lines[j]):
            j += 1
        block = lines[i:j]
        if i < first_code:
            out.append("/// @file")
            out.extend(map(as_doc, block))
        elif j < n and lines[j].strip() and (not lines[j].strip().startswith("#")
                                             or lines[j].strip().startswith("#define")):
            # The block documents every declaration up to the next blank line (overloads, an
            # accessor and its operator): one member group, its documentation shared.
            # Inline bodies are skipped by their braces; the run ends at a blank line, an access
            # specifier, another comment block or the brace that closes the enclosing scope.
            k = j
            depth = 0
            while k < n and lines[k].strip():
                if depth == 0 and (re.match(r"^\s*(public|private|protected):", lines[k])
                                   or comment.match(lines[k])):
                    break
                code = re.sub(r'"(\\.|[^"\\])*"|\'(\\.|[^\'\\])*\'|//.*$', "", lines[k])
                if depth + code.count("{") - code.count("}") < 0:
                    break
                depth += code.count("{") - code.count("}")
                k += 1
            # A body cut by a blank line is not a run of declarations: no group then.
            grouped = k - j > 1 and depth == 0 and not lines[j].lstrip().startswith(("class ", "struct ",
                                                                          "template", "enum "))
            indent = comment.match(block[0]).group(1)
            if grouped:
                out.append(indent + "///@{")
            out.extend(map(as_doc, block))
            if grouped:
                out.extend(map(with_trailing_doc, lines[j:k]))
                out.append(indent + "///@}")
                i = k
                continue
        else:
            out.extend(block)
        i = j
        continue
    out.append(with_trailing_doc(lines[i]))
    i += 1
sys.stdout.write("\n".join(out))
