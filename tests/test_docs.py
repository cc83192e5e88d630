"""The front door: README.md and docs/*.md link only to files (and headings) that exist in
the repository, the README stays short and starts with the two commands, and every built-in
recipe is listed."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
MAX_README_LINES = 150

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"(?<!!)\[([^\]\n]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code, where brackets are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def links(text: str) -> list[str]:
    return [target for _, target in LINK.findall(prose(text))]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for _, title in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(title)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(page: Path) -> list[str]:
    """`page: target (why)` for every relative link that does not resolve inside the repo."""
    bad = []
    for target in links(page.read_text(encoding="utf-8")):
        if re.match(r"^(https?:|mailto:)", target):
            continue
        file_part, _, anchor = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        if not dest.is_relative_to(ROOT):
            bad.append(f"{page.name}: {target} (outside the repository)")
        elif not dest.exists():
            bad.append(f"{page.name}: {target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{page.name}: {target} (no heading #{anchor} in {dest.name})")
    return bad


def test_the_docs_exist():
    names = {p.name for p in DOCS}
    assert {"results.md", "recipes.md", "real-models.md", "scale.md", "design.md"} <= names, names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    assert links(page.read_text(encoding="utf-8")) or page != README, "the README links to nothing"
    assert not broken_links(page), "\n".join(broken_links(page))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_page_cites_files_outside_the_repository(page):
    """DESIGN.md and METHODS.md live outside the repository: cite docs/ instead."""
    text = LINK.sub(lambda m: m.group(1) if m.group(2).startswith(("docs/", "design.md")) else m.group(0),
                    page.read_text(encoding="utf-8"))
    for name in ("DESIGN.md", "METHODS", "shared/notes"):
        assert name not in text, f"{page.name} mentions {name}"


def test_readme_is_short_and_starts_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_README_LINES, len(text.splitlines())
    assert "make demo" in text and "make test" in text
    commands = re.search(r"^```bash\n(.*?)^```", text, re.M | re.S)  # the first shell block
    assert commands, "no ```bash block"
    lines = [line.split()[:2] for line in commands.group(1).splitlines() if line.strip()]
    assert lines[:3] == [["make", "demo"], ["make", "test"], ["make", "demo-real"]], lines


def test_every_builtin_recipe_is_listed():
    names = sorted(p.stem for p in (ROOT / "sharpen" / "recipes").glob("*.yaml"))
    readme = README.read_text(encoding="utf-8")
    recipes_doc = (ROOT / "docs" / "recipes.md").read_text(encoding="utf-8")
    assert names
    assert not [n for n in names if f"`{n}`" not in readme], "recipes missing from README.md"
    assert not [n for n in names if f"**`{n}`**" not in recipes_doc], "recipes missing from docs/recipes.md"


def test_the_checker_sees_broken_links_and_anchors(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "a.md").write_text("# Top heading\n\n## Sub: part `x`\n")
    page = tmp_path / "p.md"
    page.write_text("[ok](a.md) [ok](a.md#sub-part-x) [ok](#here) [web](https://example.com)\n"
                    "[gone](missing.md) [bad](a.md#nowhere) [out](../elsewhere.md)\n"
                    "```\n[in code](not-a-link.md)\n```\n`[inline](nope.md)`\n# Here\n")
    assert broken_links(page) == ["p.md: missing.md (no such file)",
                                  "p.md: a.md#nowhere (no heading #nowhere in a.md)",
                                  "p.md: ../elsewhere.md (outside the repository)"]


def test_no_docstring_cites_files_outside_the_repository():
    """The code's comments and docstrings cite docs/ or benchmarks/, never the design notes
    that live outside the repository (METHODS §N, shared/notes/...)."""
    cited = re.compile(r"METHODS(\.md)? (§|section )\d|shared/notes/|DESIGN\.md|calibration\.md")
    bad = [f"{p.relative_to(ROOT)}:{n}" for p in sorted((ROOT / "sharpen").rglob("*.py"))
           for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1) if cited.search(line)]
    assert not bad, bad
