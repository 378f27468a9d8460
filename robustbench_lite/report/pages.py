"""The report's sections rendered as one self-contained HTML page and as GitHub Markdown.

HTML: plots embedded as base64 PNGs, every user string escaped, `code` in backticks as <code>, wide tables
scrolling inside their own box, details folded (<details>), files linked. Markdown: the same content, plots
as relative image links.
"""
from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import pandas as pd

from .numbers import as_text
from .section import Section

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1100px;margin:1.5em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.5em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
h3{font-size:1em;margin:1.2em 0 .3em}nav{font-size:13px;color:#555}nav a{margin-right:.8em;white-space:nowrap}
.headline{background:#f6f8fa;border-left:4px solid #0173B2;padding:.4em 1em}.headline p{margin:.45em 0}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;
vertical-align:top}th{background:#f4f4f4;position:sticky;top:0;font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.scroll{max-width:100%;max-height:440px;overflow:auto;margin:.3em 0 1em;border:1px solid #eee}
figure{margin:1em 0}img{max-width:100%;height:auto;display:block}figcaption{font-size:12px;color:#555;margin-top:.3em}
details{margin:.6em 0}summary{cursor:pointer;color:#0173B2}code{background:#f2f2f2;padding:0 .25em;border-radius:3px}
"""


def _inline(text: str) -> str:
    """A paragraph as HTML: escaped, then `code` spans marked up."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _numeric_columns(frame: pd.DataFrame) -> list[bool]:
    """Which columns hold numbers (right-aligned), not text or yes/no."""
    return [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c]) for c in frame.columns]


def _header(name: str) -> str:
    """A column name that may wrap after its underscores, so a wide table stays narrow."""
    return html.escape(name).replace("_", "_<wbr>")


def html_table(frame: pd.DataFrame) -> str:
    text = as_text(frame)
    kinds = [' class="num"' if numeric else "" for numeric in _numeric_columns(frame)]
    head = "".join(f"<th{k}>{_header(str(c))}</th>" for k, c in zip(kinds, text.columns))
    body = "\n".join("<tr>" + "".join(f"<td{k}>{html.escape(v)}</td>" for k, v in zip(kinds, row)) + "</tr>"
                     for row in text.itertuples(index=False, name=None))
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table></div>'


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _html_details(caption: str, content) -> list[str]:
    inner = html_table(content) if isinstance(content, pd.DataFrame) else "".join(f"<p>{_inline(p)}</p>" for p in content)
    return [f"<details><summary>{html.escape(caption)}</summary>{inner}</details>"]


def _html_section(section: Section, plots: dict[str, Path]) -> list[str]:
    parts = [f'<h2 id="{section.anchor}">{html.escape(section.title)}</h2>']
    body = [f"<p>{_inline(p)}</p>" for p in section.paragraphs]
    if section.title == "Headline" and body:
        body = ['<div class="headline">', *body, "</div>"]
    for name, caption in section.plots:
        body.append(f'<figure><img alt="{html.escape(name)}" src="{_data_uri(plots[name])}">'
                    f"<figcaption>{_inline(caption)}</figcaption></figure>")
    for caption, frame in section.tables:
        if caption:
            body.append(f"<h3>{html.escape(caption)}</h3>")
        body.append(html_table(frame))
    for caption, content in section.details:
        body += _html_details(caption, content)
    if section.links:
        body.append("<ul>" + "".join(f'<li><a href="{html.escape(link, quote=True)}">{html.escape(link)}</a></li>'
                                     for link in section.links) + "</ul>")
    return parts + body


def render_html(sections: list[Section], plots: dict[str, Path], subtitle: str = "") -> str:
    """One self-contained HTML page: a contents line, then every section; plots embedded as base64 PNGs."""
    nav = " ".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in sections)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             "<title>robustbench-lite report</title>", f"<style>{CSS}</style></head><body>",
             "<h1>robustbench-lite report</h1>", *([f"<p>{_inline(subtitle)}</p>"] if subtitle else []),
             f"<nav>{nav}</nav>"]
    for section in sections:
        parts += _html_section(section, plots)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _md_escape(text: str) -> str:
    """Text safe inside a GitHub Markdown table cell or paragraph: no tag can open, pipes and newlines
    neutralised; backticks kept, so `code` reads as code."""
    text = re.sub(r"<(?=[A-Za-z/!?])", "&lt;", str(text))  # no tag can open; >= and & read as typed
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame) -> str:
    text = as_text(frame)
    lines = ["| " + " | ".join(_md_escape(c) for c in text.columns) + " |",
             "|" + "|".join("---:" if numeric else "---" for numeric in _numeric_columns(frame)) + "|"]
    lines += ["| " + " | ".join(_md_escape(v) for v in row) + " |" for row in text.itertuples(index=False, name=None)]
    return "\n".join(lines)


def render_markdown(sections: list[Section], plots: dict[str, Path], out_dir: Path, subtitle: str = "") -> str:
    """The same content as GitHub Markdown: plots as relative image links, details in <details> blocks."""
    parts = ["# robustbench-lite report", "", *([_md_escape(subtitle), ""] if subtitle else [])]
    for section in sections:
        parts += [f"## {_md_escape(section.title)}", ""]
        for paragraph in section.paragraphs:
            parts += [_md_escape(paragraph), ""]
        for name, caption in section.plots:
            relative = Path(plots[name]).resolve().relative_to(Path(out_dir).resolve()).as_posix()
            parts += [f"![{_md_escape(name)}]({relative})", "", f"*{_md_escape(caption)}*", ""]
        for caption, frame in section.tables:
            if caption:
                parts += [f"### {_md_escape(caption)}", ""]
            parts += [markdown_table(frame), ""]
        for caption, content in section.details:
            inner = [markdown_table(content)] if isinstance(content, pd.DataFrame) else \
                [line for p in content for line in (_md_escape(p), "")]
            parts += ["<details>", f"<summary>{_md_escape(caption)}</summary>", "", *inner, "", "</details>", ""]
        if section.links:
            parts += [f"- [{_md_escape(link)}]({link})" for link in section.links] + [""]
    return "\n".join(parts)
