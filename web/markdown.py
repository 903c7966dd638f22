"""Markdown as sanitised HTML: for assignment descriptions and the Markdown cells of notebooks.

Two independent layers. markdown-it-py renders with raw HTML off (a `<script>` in the text comes
out as text) and its own link check (no `javascript:`, `vbscript:`, `file:`); nh3 (ammonia) then
keeps only the tags, attributes and URL schemes listed here, whatever the first layer let through.
Images: the page's Content-Security-Policy allows `img-src 'self' data:` only, and an image from
another host would tell that host who reads the page, so only same-site images stay; another
site's image becomes a link to it, a `data:` image becomes its alt text.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

TAGS = {"p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "s", "code", "pre",
        "blockquote", "ul", "ol", "li", "a", "img", "table", "thead", "tbody", "tr", "th", "td"}
ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"}}
URL_SCHEMES = {"http", "https", "mailto"}
LINK_REL = "nofollow noopener"
ALIGN_CLASSES = {"md-left", "md-center", "md-right"}
ALIGN = re.compile(r"text-align:(left|center|right)")
MAX_SOURCE = 100_000  # a description or a cell; the rest is cut, not parsed


def same_site(url: str) -> bool:
    """Whether url points into this site (a relative path, no scheme and no host)."""
    parts = urlsplit(url.strip())
    return not parts.scheme and not parts.netloc and not url.strip().startswith(("//", "\\"))


def _image(renderer: Any, tokens: list[Any], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    alt = "".join(child.content for child in token.children or [])
    if same_site(src):
        return f'<img src="{escape(src)}" alt="{escape(alt)}">'
    if urlsplit(src).scheme in ("http", "https"):
        return f'<a href="{escape(src)}">{escape(alt or src)} (an image on another site)</a>'
    return f"[image: {escape(alt)}]" if alt else ""


def _align_to_class(state: Any) -> None:
    # Tables align their columns with style="text-align:…"; the CSP forbids inline styles.
    for token in state.tokens:
        style = token.attrGet("style") if token.type in ("th_open", "td_open") else None
        if style and (m := ALIGN.search(str(style))):
            token.attrs.pop("style", None)
            token.attrSet("class", f"md-{m.group(1)}")


def _parser() -> MarkdownIt:
    md = MarkdownIt("js-default", {"html": False, "linkify": False, "typographer": False})
    md.add_render_rule("image", _image)
    md.core.ruler.push("align_to_class", _align_to_class)
    return md


_MD = _parser()


def _img_src(tag: str, attr: str, value: str) -> str | None:
    if tag == "img" and attr == "src" and not same_site(value):
        return None
    return value


def clean(html: str) -> str:
    """HTML reduced to the allow-list: tags, attributes, URL schemes; links get rel=nofollow noopener."""
    return nh3.clean(html, tags=TAGS, attributes=ATTRIBUTES, url_schemes=URL_SCHEMES, link_rel=LINK_REL,
                     attribute_filter=_img_src, allowed_classes={"th": ALIGN_CLASSES, "td": ALIGN_CLASSES},
                     clean_content_tags={"script", "style"}, strip_comments=True)


def render(text: str | None) -> Markup:
    """Markdown text as HTML that is safe to put in a page (nothing in it can run or load elsewhere)."""
    source = str(text or "")[:MAX_SOURCE]
    return Markup(clean(_MD.render(source)))  # nh3's output: only the allow-list above survives
