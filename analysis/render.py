"""Turn a :class:`analysis.report.Report` into one HTML file and its Markdown twin.

The document is first laid out as a list of blocks (headings, Markdown text, figures,
collapsible details, alerts), built by :mod:`analysis.report_layout`; this module renders
those blocks twice. The HTML is self-contained: figures are embedded as ``data:`` URIs and
the style sheet is inline, so the file opens offline and can be mailed around. The Markdown
refers to the figures copied next to it (``report_files/``).
"""

from __future__ import annotations

import base64
import html
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError

#: Verdict symbols in tables; the HTML colours the cells that start with them.
PASS, FAIL, NONE = "\u2714", "\u2718", "\u2013"
_CELL_CLASS = {PASS: "ok", FAIL: "bad", NONE: "na"}


@dataclass
class Heading:
    """A heading; ``anchor`` is its id (also the target of the table of contents)."""

    level: int
    text: str
    anchor: str


@dataclass
class Text:
    """Markdown (tables, lists, emphasis, code)."""

    markdown: str


@dataclass
class Image:
    """A PNG figure with its number and caption."""

    path: Path
    number: int
    caption: str


@dataclass
class Details:
    """A collapsible block (closed by default)."""

    summary: str
    markdown: str


@dataclass
class Alert:
    """A highlighted note: ``kind`` is ``error`` or ``warning``."""

    kind: str
    markdown: str


Block = Heading | Text | Image | Details | Alert


def slug(text: str, taken: set[str]) -> str:
    """A GitHub-style anchor for a heading, unique within ``taken`` (which it extends)."""
    base = re.sub(r"[^\w\- ]", "", text.lower()).strip().replace(" ", "-") or "section"
    anchor, n = base, 1
    while anchor in taken:
        anchor, n = f"{base}-{n}", n + 1
    taken.add(anchor)
    return anchor


def shift_headings(markdown: str, by: int) -> str:
    """Demote Markdown headings by ``by`` levels (outside fenced code), at most to level 6."""
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            line = "#" * min(6, line.index(" ") + by) + line[line.index(" "):]
        out.append(line)
    return "\n".join(out)


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


# --- Markdown ------------------------------------------------------------------------------

def to_markdown(blocks: list[Block], figure_dir: Path) -> str:
    """The Markdown document; figures are copied into ``figure_dir`` (created, emptied)."""
    shutil.rmtree(figure_dir, ignore_errors=True)
    figure_dir.mkdir(parents=True)
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Text):
            parts.append(block.markdown.strip())
        elif isinstance(block, Image):
            name = f"figure-{block.number:02d}.png"
            shutil.copyfile(block.path, figure_dir / name)
            parts.append(f"![Figure {block.number}]({figure_dir.name}/{name})\n\n"
                         f"*Figure {block.number}. {block.caption}*")
        elif isinstance(block, Details):
            parts.append(f"<details><summary>{html.escape(block.summary)}</summary>\n\n"
                         f"{block.markdown.strip()}\n\n</details>")
        elif isinstance(block, Alert):
            label = "Error" if block.kind == "error" else "Note"
            parts.append("\n".join(f"> {line}" if line else ">" for line in
                                   f"**{label}**: {block.markdown.strip()}".splitlines()))
    return "\n\n".join(parts) + "\n"


# --- HTML ----------------------------------------------------------------------------------

def to_html(blocks: list[Block], title: str) -> str:
    """The self-contained HTML page."""
    try:
        import markdown
    except ImportError:
        raise UserError("analysis report needs the python package 'markdown': "
                        "pip install markdown") from None
    converter = markdown.Markdown(extensions=["tables", "fenced_code", "sane_lists"])

    def md(text: str) -> str:
        converter.reset()
        return _colour_verdicts(converter.convert(text))

    body = []
    toc = [(b.level, b.text, b.anchor) for b in blocks
           if isinstance(b, Heading) and 2 <= b.level <= 3]
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f'<h{block.level} id="{block.anchor}">{html.escape(block.text)}'
                        f'</h{block.level}>')
            if block.level == 1:
                body.append(_toc_html(toc))
        elif isinstance(block, Text):
            body.append(md(block.markdown))
        elif isinstance(block, Image):
            data = base64.b64encode(Path(block.path).read_bytes()).decode()
            body.append(f'<figure id="figure-{block.number}"><img alt="Figure {block.number}: '
                        f'{html.escape(block.caption, quote=True)}" '
                        f'src="data:image/png;base64,{data}">'
                        f"<figcaption><b>Figure {block.number}.</b> "
                        f"{html.escape(block.caption)}</figcaption></figure>")
        elif isinstance(block, Details):
            body.append(f"<details><summary>{html.escape(block.summary)}</summary>"
                        f"{md(block.markdown)}</details>")
        elif isinstance(block, Alert):
            body.append(f'<div class="alert {block.kind}">{md(block.markdown)}</div>')
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<main>\n" + "\n".join(body) + "\n</main>\n</body>\n</html>\n")


def _toc_html(entries: list[tuple[int, str, str]]) -> str:
    items = []
    for level, text, anchor in entries:
        cls = "toc2" if level == 2 else "toc3"
        items.append(f'<li class="{cls}"><a href="#{anchor}">{html.escape(text)}</a></li>')
    return f'<nav class="toc"><b>Contents</b><ul>{"".join(items)}</ul></nav>'


def _colour_verdicts(fragment: str) -> str:
    """Give table cells that start with a verdict symbol the class of that verdict."""
    def repl(match: re.Match) -> str:
        attrs, symbol = match.group(1), match.group(2)
        return f'<td class="{_CELL_CLASS[symbol]}"{attrs}>{symbol}'
    return re.sub(f"<td([^>]*)>([{PASS}{FAIL}{NONE}])", repl, fragment)


_CSS = """
body { font-family: -apple-system, "Segoe UI", "DejaVu Sans", Roboto, Helvetica, Arial,
       sans-serif; color: #1d2330; background: #f6f7f9; margin: 0; line-height: 1.45; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 36px 64px; background: #fff;
       box-shadow: 0 0 12px rgba(0,0,0,.06); }
h1 { font-size: 1.9em; margin: .3em 0 .4em; border-bottom: 3px solid #2f6fb3;
     padding-bottom: .2em; }
h2 { font-size: 1.45em; margin-top: 2.2em; border-bottom: 1px solid #ccd3dd; padding-bottom: .15em;
     color: #1f4f86; }
h3 { font-size: 1.2em; margin-top: 1.8em; color: #1f4f86; }
h4 { font-size: 1.05em; margin-top: 1.3em; }
h5, h6 { font-size: .98em; margin-top: 1.1em; }
table { border-collapse: collapse; margin: .6em 0 1em; font-size: .9em; display: block;
        overflow-x: auto; max-width: 100%; }
th, td { border: 1px solid #d5dbe3; padding: 4px 9px; vertical-align: top; }
th { background: #eef2f7; text-align: left; }
tr:nth-child(even) td { background: #fafbfc; }
td.ok { background: #e3f4e6 !important; color: #176b2c; font-weight: 600; }
td.bad { background: #fbe4e4 !important; color: #9b1c1c; font-weight: 600; }
td.na { background: #f1f1f1 !important; color: #666; }
figure { margin: 1em 0 1.6em; }
figure img { max-width: 100%; height: auto; border: 1px solid #e2e6ec; display: block; }
figcaption { font-size: .9em; color: #444; margin-top: .35em; max-width: 900px; }
nav.toc { background: #f3f6fa; border: 1px solid #dbe2ea; padding: 8px 18px; margin: 1em 0;
          display: inline-block; min-width: 320px; }
nav.toc ul { margin: .3em 0; padding-left: 1.1em; }
nav.toc li.toc3 { margin-left: 1.2em; font-size: .93em; }
a { color: #2f6fb3; }
code { background: #f1f3f6; padding: 0 3px; font-size: .92em; }
td code { white-space: nowrap; }
pre { background: #f1f3f6; padding: 8px; overflow-x: auto; font-size: .85em; }
details { margin: .5em 0 1em; }
summary { cursor: pointer; font-weight: 600; }
.alert { border-left: 5px solid; padding: 4px 14px; margin: 1em 0; }
.alert.error { border-color: #c62828; background: #fdecec; }
.alert.warning { border-color: #d08a00; background: #fff6e0; }
"""
