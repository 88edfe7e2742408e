#!/usr/bin/env python3
"""Writes the rule-file lists of deploy/k8s from rules/.

A ConfigMap is flat (keys cannot contain '/'), while rules/ has subdirectories. So each rule file
becomes one key, its relative path with '/' written as '__' (seed/blocked.yaml ->
seed__blocked.yaml), in two lists that must agree with rules/:

- kustomization.yaml, configMapGenerator `files`: key=../../rules/path (the ConfigMap's content);
- deployment.yaml, the rules volume's `items`: key -> path (puts each key back at its place).

Each list sits between `# BEGIN rules files` and `# END rules files` lines; only those lines are
rewritten. The files are the ones the server reads: *.yaml, *.yml and *.rhai, recursively, names
starting with a dot skipped, symlinks followed.

    python3 deploy/k8s/gen-rules-configmap.py          # rewrite the lists
    python3 deploy/k8s/gen-rules-configmap.py --check  # exit 1 if they are out of date (CI)

Standard library only.
"""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RULES = os.path.join(ROOT, "rules")
BEGIN = re.compile(r"^(\s*)# BEGIN rules files\b")
END = re.compile(r"^\s*# END rules files\b")
# A ConfigMap key is [-._a-zA-Z0-9]+; keeping every path component within that set keeps the
# '__' encoding valid, and `key=path` unambiguous for kustomize.
COMPONENT = re.compile(r"^[-._a-zA-Z0-9]+$")
RULE_EXTENSIONS = (".yaml", ".yml", ".rhai")


def rule_files():
    """Relative paths ('/'-separated, sorted) of the rule files, as the server's loader finds them."""
    found = []
    for dirpath, dirnames, filenames in os.walk(RULES, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith(".") and name.endswith(RULE_EXTENSIONS):
                found.append(os.path.relpath(os.path.join(dirpath, name), RULES).replace(os.sep, "/"))
    return sorted(found)


def key_of(rel):
    return rel.replace("/", "__")


def keys_or_die(files):
    problems = []
    seen = {}
    for rel in files:
        bad = [c for c in rel.split("/") if not COMPONENT.match(c)]
        if bad:
            problems.append(f"rules/{rel}: {bad[0]!r} has characters outside [-._a-zA-Z0-9]")
        key = key_of(rel)
        if key in seen:
            problems.append(f"rules/{rel} and rules/{seen[key]} both become the key {key!r}")
        seen[key] = rel
        if len(key) > 253:
            problems.append(f"rules/{rel}: the key {key!r} is longer than 253 characters")
    if problems:
        for p in problems:
            print(f"gen-rules-configmap: {p}", file=sys.stderr)
        sys.exit(1)


def replace_block(text, path, make_lines):
    """`text` with the lines between the BEGIN and END markers replaced by make_lines(indent)."""
    lines = text.splitlines(keepends=True)
    begins = [i for i, line in enumerate(lines) if BEGIN.match(line)]
    ends = [i for i, line in enumerate(lines) if END.match(line)]
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        sys.exit(f"gen-rules-configmap: {path}: expected one '# BEGIN rules files' line, then one '# END rules files' line")
    indent = BEGIN.match(lines[begins[0]]).group(1)
    body = [indent + line + "\n" for line in make_lines()]
    return "".join(lines[: begins[0] + 1] + body + lines[ends[0] :])


def main():
    check = sys.argv[1:] == ["--check"]
    if sys.argv[1:] not in ([], ["--check"]):
        sys.exit(__doc__)
    files = rule_files()
    if not files:
        sys.exit(f"gen-rules-configmap: no rule files under {RULES}")
    keys_or_die(files)
    rel_rules = os.path.relpath(RULES, HERE).replace(os.sep, "/")

    def generator_files():
        return [f"- {key_of(rel)}={rel_rules}/{rel}" for rel in files]

    def volume_items():
        out = []
        for rel in files:
            out += [f"- key: {key_of(rel)}", f"  path: {rel}"]
        return out

    stale = []
    for name, make in (("kustomization.yaml", generator_files), ("deployment.yaml", volume_items)):
        path = os.path.join(HERE, name)
        with open(path, encoding="utf-8") as f:
            old = f.read()
        new = replace_block(old, path, make)
        if new == old:
            continue
        if check:
            stale.append(os.path.relpath(path, ROOT))
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(new)
            print(f"gen-rules-configmap: wrote {os.path.relpath(path, ROOT)} ({len(files)} rule files)")
    if stale:
        print(
            f"gen-rules-configmap: {', '.join(stale)} out of date with rules/ ({len(files)} rule files);"
            " run `python3 deploy/k8s/gen-rules-configmap.py` and commit the result",
            file=sys.stderr,
        )
        sys.exit(1)
    if check:
        print(f"gen-rules-configmap: deploy/k8s lists all {len(files)} rule files of rules/")


if __name__ == "__main__":
    main()
