"""Every relative link in README.md and docs/ resolves: its file exists, its #anchor is there.

Anchors are GitHub's: a heading's text lowercased, punctuation dropped, spaces made
hyphens, a repeated heading numbered (-1, -2, ...). Links and headings inside code
(fenced blocks, inline spans) are not links or headings, so they are skipped.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).parents[2]

HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
HTML_ANCHOR = re.compile(r"""<a\s+(?:id|name)=["']([^"']+)["']""")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
INLINE_LINK_TEXT = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # https:, mailto:, ...


def pages(root: Path = ROOT) -> list[Path]:
    """The documentation a reader browses: the README and every page under docs/."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def prose_lines(text: str) -> Iterator[str]:
    """The lines outside fenced code blocks."""
    fence: str | None = None
    for line in text.splitlines():
        marker = re.match(r"^\s*(```+|~~~+)", line)
        if fence is None and marker:
            fence = marker.group(1)
        elif fence is not None and marker and marker.group(1).startswith(fence):
            fence = None
        elif fence is None:
            yield line


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text (before numbering repeats)."""
    text = INLINE_LINK_TEXT.sub(r"\1", heading).lower()
    kept = (c for c in text if c.isalnum() or c in " -_" or unicodedata.category(c).startswith("M"))
    return "".join(kept).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor a page offers: its headings' slugs (repeats numbered) and HTML anchors."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in prose_lines(text):
        found.update(HTML_ANCHOR.findall(line))
        heading = HEADING.match(line)
        if not heading:
            continue
        base = slug(heading.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(text: str) -> Iterator[str]:
    """The targets of the page's links and images, outside code."""
    for line in prose_lines(text):
        yield from LINK.findall(CODE_SPAN.sub("code", line))


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """What is wrong with the page's relative links, one line each (empty: nothing)."""
    problems = []
    for target in links(page.read_text()):
        if EXTERNAL.match(target):
            continue
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / unquote(path_part)).resolve() if path_part else page
        where = f"{page.relative_to(root)}: {target}"
        if not linked.is_relative_to(root.resolve()):
            problems.append(f"{where}: outside the repository")
        elif not linked.exists():
            problems.append(f"{where}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text()):
            problems.append(f"{where}: no heading with that anchor in {linked.name}")
    return problems


def test_every_relative_link_in_the_readme_and_docs_resolves():
    problems = [problem for page in pages() for problem in broken_links(page)]
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_the_pages_checked_include_the_readme_and_every_docs_page():
    checked = {page.relative_to(ROOT).as_posix() for page in pages()}
    assert {"README.md", "docs/events.md", "docs/examples/README.md"} <= checked


def test_slug__is_githubs():
    assert slug("Start-up: ~30 s → ~4 s") == "start-up-30-s--4-s"
    assert slug("Action `kafka`") == "action-kafka"
    assert slug("river's detectors, measured (and why)") == "rivers-detectors-measured-and-why"
    assert slug("FIRELINE_DETECTION__* settings") == "fireline_detection__-settings"
    assert slug("See [Slack](slack.md) here") == "see-slack-here"


def test_anchors__number_repeated_headings_and_skip_code_blocks():
    text = '# Title\n## Notes\n```yaml\n# alertmanager.yml\n```\n## Notes\n<a id="kept"></a>\n'
    assert anchors(text) == {"title", "notes", "notes-1", "kept"}


def test_broken_links__names_a_missing_file_and_a_missing_anchor(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("# Guide\n\n## Setting up\n")
    (tmp_path / "README.md").write_text(
        "See [the guide](docs/guide.md#setting-up), [gone](docs/gone.md),\n"
        "[a typo](docs/guide.md#set-up), [here](#readme), [ext](https://example.com/x.md#y)\n"
        "and `[in code](docs/nothing.md)`.\n\n"
        "```\n[in a block](docs/nothing.md)\n```\n\n# README\n"
    )

    assert broken_links(tmp_path / "README.md", root=tmp_path) == [
        "README.md: docs/gone.md: no such file",
        "README.md: docs/guide.md#set-up: no heading with that anchor in guide.md",
    ]
