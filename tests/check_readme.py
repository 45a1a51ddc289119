#!/usr/bin/python3
"""Runs README.md's marked examples so they cannot drift from what the program does.

Markers (HTML comments, invisible on the rendered page):
  <!-- readme-file: NAME -->   the next fenced block is written to WORK/NAME
  <!-- readme-run -->          the next fenced block holds commands (one per line, `\\`
                               continues a line); they run in WORK (where build/, tests/,
                               configs/ and tools/ point into the checkout) and must exit 0. When
                               another fenced block follows directly, it is their expected
                               standard output: lines must match in order, and a line that
                               ends in `…` matches any line that starts with the rest.

usage: /usr/bin/python3 tests/check_readme.py README.md BUILD_DIR WORK_DIR
"""

import os
import re
import shutil
import subprocess
import sys

readme, build, work = sys.argv[1], os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])
root = os.path.dirname(os.path.abspath(readme))
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
os.symlink(build, os.path.join(work, "build"))
for d in ("tests", "configs", "tools"):
    os.symlink(os.path.join(root, d), os.path.join(work, d))

lines = open(readme, encoding="utf-8").read().split("\n")


def fence_at(i):
    """(body lines, index after the closing fence) of the fenced block starting at i."""
    assert lines[i].startswith("```"), "line %d: expected a fenced block after the marker" % (i + 1)
    j = i + 1
    while not lines[j].startswith("```"):
        j += 1
    return lines[i + 1:j], j + 1


def next_fence(i):
    while i < len(lines) and not lines[i].startswith("```"):
        if lines[i].strip():
            return None
        i += 1
    return i if i < len(lines) else None


failures, runs = [], 0
i = 0
while i < len(lines):
    m = re.match(r"<!-- readme-(file|run)(?:: (\S+))? -->", lines[i].strip())
    if not m:
        i += 1
        continue
    start = next_fence(i + 1)
    body, i = fence_at(start)
    if m.group(1) == "file":
        with open(os.path.join(work, m.group(2)), "w") as f:
            f.write("\n".join(body) + "\n")
        continue
    commands = re.sub(r"\\\n\s*", " ", "\n".join(body)).split("\n")
    expected = None
    after = next_fence(i)
    if after is not None and after == i:  # an output block follows directly
        expected, i = fence_at(after)
    out = ""
    for cmd in commands:
        if not cmd.strip() or cmd.strip().startswith("#"):
            continue
        runs += 1
        r = subprocess.run(cmd, shell=True, cwd=work, capture_output=True, text=True)
        print("ran (exit %d): %s" % (r.returncode, cmd))
        if r.returncode != 0:
            failures.append("README line %d: `%s` exited %d: %s" % (start + 1, cmd, r.returncode, r.stderr.strip()))
        out += r.stdout
    if expected is not None:
        got = out.rstrip("\n").split("\n")
        ok = len(got) == len(expected) and all(
            g.startswith(e[:-1]) if e.endswith("…") else g == e for g, e in zip(got, expected))
        if not ok:
            failures.append("README line %d: output differs\n  expected:\n    %s\n  got:\n    %s"
                            % (start + 1, "\n    ".join(expected), "\n    ".join(got)))

# Synopsis blocks (a fenced block whose first line starts with "sit-eval "): every option
# they show exists in the command's --help, and a default they show ([--opt VALUE], or the
# first of VALUE|OTHER) is the default --help prints.
synopses = 0
i = 0
while i < len(lines):
    if not (lines[i].startswith("```") and i + 1 < len(lines) and lines[i + 1].startswith("sit-eval ")):
        i += 1
        continue
    body, i = fence_at(i)
    commands = []
    for line in body:
        if line.startswith("sit-eval "):
            commands.append(line)
        elif commands:
            commands[-1] += " " + line.strip()
    for cmd in commands:
        words = cmd.split()
        path = [words[1]]
        if words[1] == "sample":
            path.append(words[2].split("|")[0])
        helps = {}
        for sub in ([path] if path[0] != "sample" else [["sample", f] for f in words[2].split("|")]):
            r = subprocess.run([os.path.join(build, "eval", "sit-eval")] + sub + ["--help"], capture_output=True, text=True)
            helps[" ".join(sub)] = r.stdout
        synopses += 1
        for opt, value in re.findall(r"\[(--[a-z0-9-]+)(?: ([^\]\s]+))?", cmd):
            for name, text in helps.items():
                m = re.search(r"^\s*(?:-\w,)?%s\b([^\n]*)" % re.escape(opt), text, re.M)
                if not m:
                    failures.append("README synopsis `sit-eval %s`: %s is not an option of `sit-eval %s`"
                                    % (" ".join(path), opt, name))
                    continue
                shown = re.match(r"\s*\S*?=(\S+)", m.group(1))
                # a literal value (placeholders such as N, FILE.pt or η are not compared)
                if shown and value and re.match(r"^[a-z0-9][A-Za-z0-9.,+-]*(\|.*)?$", value):
                    want, have = value.split("|")[0], shown.group(1)
                    try:
                        same = float(want) == float(have)
                    except ValueError:
                        same = want == have
                    if not same:
                        failures.append("README synopsis `sit-eval %s`: %s shows %s, --help's default is %s"
                                        % (name, opt, want, shown.group(1)))

print("%d README commands run, %d synopsis lines checked against --help" % (runs, synopses))
if runs == 0:
    failures.append("no marked example found")
for f in failures:
    print("FAIL", f)
sys.exit(1 if failures else 0)
