"""Just enough Rust reading for the Terraform contract checks (tests/terraform/contract.py).

Not a Rust parser: comments and literals are masked so that braces, parentheses and names can
be matched safely, and items (structs, impl blocks, fns) are found by their keywords. Whatever
these helpers cannot make sense of raises `Unmodelled`, so a check fails loudly instead of
passing on code it did not understand.
"""

import re
from pathlib import Path

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


class Unmodelled(Exception):
    """The code does something the contract checks do not know how to read."""


def mask(src):
    """`src` with comment text and the inside of string and char literals blanked (same
    length, newlines kept), so that structure can be matched on it."""
    out = list(src)
    i, n = 0, len(src)

    def blank(a, b):
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif c == "r" and re.match(r'r#*"', src[i:i + 10]) and (i == 0 or not re.match(r"\w", src[i - 1])):
            hashes = re.match(r'r(#*)"', src[i:]).group(1)
            start = i + 2 + len(hashes)
            end = src.find('"' + hashes, start)
            if end < 0:
                raise Unmodelled("unterminated raw string")
            blank(start, end)
            i = end + 1 + len(hashes)
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            blank(i + 1, j)
            i = j + 1
        elif c == "'":
            # A char literal ('x', '\n', '\'', '\u{..}') or a lifetime ('a).
            if src.startswith("\\", i + 1):
                j = src.find("'", i + 3 if src[i + 2] == "'" else i + 2)
                blank(i + 1, j)
                i = j + 1
            elif i + 2 < n and src[i + 2] == "'":
                blank(i + 1, i + 2)
                i += 3
            else:
                i += 1
        else:
            i += 1
    return "".join(out)


def matching(text, open_at):
    """Index just past the bracket closing the one at `open_at` (masked text)."""
    pairs = {"{": "}", "(": ")", "[": "]", "<": ">"}
    o = text[open_at]
    c = pairs[o]
    depth = 0
    for k in range(open_at, len(text)):
        if text[k] == o:
            depth += 1
        elif text[k] == c:
            depth -= 1
            if depth == 0:
                return k + 1
    raise Unmodelled(f"unbalanced {o!r} at offset {open_at}")


def split_top(text, sep=","):
    """Split at `sep` where no bracket is open."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "([{<":
            depth += 1
        elif ch in ")]}>":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p for p in parts if p.strip()]


def last_type_name(type_text):
    """`Arc<dyn Builds>` -> Builds, `FleetParams` -> FleetParams, `Option<String>` -> String."""
    names = re.findall(r"\b[A-Z]\w*", type_text)
    if not names:
        raise Unmodelled(f"no type name in {type_text.strip()!r}")
    return names[-1]


def strip_generics(text):
    out, depth = [], 0
    for ch in text:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out)


class Fn:
    def __init__(self, file, owner, trait, name, start, body):
        self.file, self.owner, self.trait, self.name = file, owner, trait, name
        self.start = start
        self.body = body  # (start, end) of the body, braces included

    def text(self):
        return self.file.src[self.body[0]:self.body[1]]

    def masked(self):
        return self.file.masked[self.body[0]:self.body[1]]

    def where(self):
        line = self.file.src.count("\n", 0, self.start) + 1
        return f"{self.file.rel}:{line}"

    def __repr__(self):
        return f"{self.owner or ''}::{self.name}"


class RustFile:
    def __init__(self, path, root):
        self.path = Path(path)
        self.rel = str(self.path.relative_to(root))
        self.src = self.path.read_text(encoding="utf-8")
        self.masked = mask(self.src)
        self._drop_test_modules()
        self.structs = {}  # name -> {field: type text}
        self.fns = []  # every fn with a body: methods and free functions
        self._parse()

    def _drop_test_modules(self):
        # `#[cfg(test)] mod x { .. }` is not part of any binary.
        m = self.masked
        for hit in list(re.finditer(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", m)):
            end = matching(m, hit.end() - 1)
            m = m[:hit.start()] + re.sub(r"[^\n]", " ", m[hit.start():end]) + m[end:]
        self.masked = m

    def _depth_at(self, pos):
        d = 0
        for ch in self.masked[:pos]:
            if ch == "{":
                d += 1
            elif ch == "}":
                d -= 1
        return d

    def _fns_in(self, start, end, owner, trait):
        m, pos = self.masked, start
        while True:
            hit = re.compile(r"\bfn\s+(" + IDENT + r")\s*(<)?").search(m, pos, end)
            if not hit:
                return
            p = hit.end()
            if hit.group(2):
                p = matching(m, p - 1)
            p = m.index("(", p)
            p = matching(m, p)
            brace, semi = m.find("{", p, end), m.find(";", p, end)
            if brace < 0 or (0 <= semi < brace):
                pos = p  # a declaration without a body
                continue
            close = matching(m, brace)
            self.fns.append(Fn(self, owner, trait, hit.group(1), hit.start(), (brace, close)))
            pos = close

    def _parse(self):
        m = self.masked
        for hit in re.finditer(r"\bstruct\s+(" + IDENT + r")\s*(<[^{;]*>)?\s*\{", m):
            end = matching(m, hit.end() - 1)
            body = re.sub(r"#\[[^\]]*\]", " ", m[hit.end():end - 1])
            fields = {}
            for part in split_top(body):
                fm = re.match(r"\s*(?:pub(?:\([^)]*\))?\s+)?(" + IDENT + r")\s*:\s*(.+)$", part, re.S)
                if fm:
                    fields[fm.group(1)] = fm.group(2).strip()
            self.structs[hit.group(1)] = fields
        impl_spans = []
        # A `macro_rules!` body is a template (its types are `$vars`); its expansions are read
        # where the macro is invoked.
        macros = [(h.end() - 1, matching(m, h.end() - 1))
                  for h in re.finditer(r"\bmacro_rules!\s*" + IDENT + r"\s*\{", m)]
        # `impl` items only, at the start of a line: not `impl Trait` in a signature.
        for hit in re.finditer(r"^[ \t]*(?:unsafe\s+)?impl\b", m, re.M):
            if any(a <= hit.start() < b for a, b in macros):
                continue
            p = hit.end()
            while m[p].isspace():
                p += 1
            if m[p] == "<":
                p = matching(m, p)
            brace = m.find("{", p)
            header = strip_generics(m[p:brace])
            header = re.split(r"\bwhere\b", header)[0]
            parts = re.split(r"\bfor\b", header)
            trait = last_type_name(parts[0]) if len(parts) == 2 else None
            owner = last_type_name(parts[-1])
            end = matching(m, brace)
            impl_spans.append((brace, end))
            self._fns_in(brace + 1, end - 1, owner, trait)
        # Free functions: at the top level of the file.
        pos = 0
        for hit in re.finditer(r"\bfn\s+(" + IDENT + r")", m):
            if any(a <= hit.start() < b for a, b in impl_spans) or self._depth_at(hit.start()) != 0:
                continue
            if hit.start() < pos:
                continue
            before = len(self.fns)
            self._fns_in(hit.start(), len(m), None, None)
            # _fns_in appends every following fn too; keep only this one.
            first = self.fns[before] if len(self.fns) > before else None
            del self.fns[before + 1:]
            if first:
                pos = first.body[1]

    def methods(self, owner, name=None):
        return [f for f in self.fns if f.owner == owner and (name is None or f.name == name)]

    def free(self, name):
        return [f for f in self.fns if f.owner is None and f.name == name]


def load(root, *dirs):
    files = []
    for d in dirs:
        for p in sorted((Path(root) / d).rglob("*.rs")):
            files.append(RustFile(p, root))
    return files


def string_consts(rust_file):
    """`pub const NAME: &str = "value";` in a file."""
    return dict(re.findall(r'\bconst\s+(' + IDENT + r')\s*:\s*&(?:\'static\s+)?str\s*=\s*"([^"]*)"\s*;',
                           rust_file.src))
