"""A griffe extension: kreg's docstrings as mkdocstrings renders them.

kreg's docstrings follow Google style with two habits of the Python help and doctest
world that Markdown does not read:

* the ``>>>`` example after ``Example:`` starts at the docstring's margin, not indented
  under it; it is indented here, so that the example becomes an Examples section whose
  code is highlighted (and not Markdown, where ``[0][0]`` reads as a link);
* an ``Attributes:`` section written as a sentence, not as ``name: description`` lines
  (which griffe would drop with a warning), is shown as the sentence it is;
* ``Call arguments:`` (Keras' section for a layer's ``call``) is a list, as Args is, and
  ``References:`` a paragraph, each under a bold title (not an admonition box);
* Sphinx roles (``:class:`Strength```, ``:func:`kreg.strengths```): a role naming an
  object with an API entry on the site (a ``::: path`` line in docs/components/*.md)
  becomes a link to it, any other one inline code.
"""

import pathlib
import re

import griffe

DOCS = pathlib.Path(__file__).resolve().parent
SECTION = re.compile(r"^(Examples?):\s*$")
HEADER = re.compile(r"^[A-Z][A-Za-z ]*:\s*$")
PAIR = re.compile(r"^\s+\w+(\s*\([^)]*\))?:\s")
ROLE = re.compile(r":(?:class|func|meth|mod|attr|obj|data|exc):`~?([\w.]+)`")


def documented():
    """Every identifier with an API entry, and its short names (the last dotted parts)."""
    paths = set()
    for page in DOCS.glob("components/*.md"):
        paths.update(re.findall(r"^::: ([\w.]+)\s*$", page.read_text(encoding="utf-8"), re.M))
    short = {}
    for path in paths:
        parts = path.split(".")
        for i in range(1, len(parts)):
            short.setdefault(".".join(parts[i:]), set()).add(path)
    names = {name: next(iter(found)) for name, found in short.items() if len(found) == 1}
    # kreg.audit is the function kreg/audit/__init__.py defines (the package's name too).
    names.update({"kreg.audit": "kreg.audit.audit", "audit": "kreg.audit.audit"})
    return paths, names


def indent_examples(text):
    """Indent what follows ``Example:`` up to the next section header."""
    lines = text.split("\n")
    out, inside = [], False
    for line in lines:
        if SECTION.match(line):
            inside = True
            out.append("Examples:")
            continue
        if inside and not line.strip() and out[-1] == "Examples:":
            continue  # griffe skips a section whose title a blank line follows
        if inside and line and not line.startswith(" ") and HEADER.match(line):
            inside = False
        out.append("    " + line if inside and line.strip() else line)
    return "\n".join(out)


def prose_attributes(text):
    """``Attributes:`` followed by a sentence -> an admonition titled "Attributes"."""
    lines = text.split("\n")
    for i, line in enumerate(lines[:-1]):
        if (
            line.strip() == "Attributes:"
            and not line.startswith(" ")
            and lines[i + 1].strip()
            and not PAIR.match(lines[i + 1])
        ):
            lines[i] = "Instance attributes:"
    return "\n".join(lines)


def plain_sections(text):
    """``Call arguments:`` (Keras' section for a layer's ``call``) becomes a list under a bold
    title, as Parameters is shown; ``References:`` a paragraph under a bold title (griffe
    would make either an admonition box)."""
    lines = text.split("\n")
    out, inside = [], None
    for line in lines:
        if line.strip() in ("Call arguments:", "References:") and not line.startswith(" "):
            inside = line.strip()
            out += [f"**{inside}**", ""]
            continue
        if inside and line and not line.startswith(" "):
            inside = None
        if inside == "Call arguments:" and PAIR.match(line) and not line.startswith("     "):
            name, _, description = line.strip().partition(":")
            line = f"- `{name}`: {description.strip()}"
        elif inside == "Call arguments:" and line.strip():
            line = "  " + line.strip()
        elif inside and line.strip():
            line = line.strip()
        out.append(line)
    return "\n".join(out)


class KregDocstrings(griffe.Extension):
    def __init__(self):
        super().__init__()
        self.paths, self.short = documented()

    def _role(self, match):
        target = match.group(1)
        path = target if target in self.paths else self.short.get(target)
        if path is None:
            return f"`{target}`"
        return f"[`{target}`][{path}]"

    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is None:
            return
        text = plain_sections(prose_attributes(indent_examples(obj.docstring.value)))
        obj.docstring.value = ROLE.sub(self._role, text)
