"""web.markdown against hostile Markdown, and notebooks' Markdown cells rendered through it (web.notebook)."""

from __future__ import annotations

import itertools
import json
import re

import pytest

from web import markdown, notebook

# Every way a Markdown text might try to run script, load from elsewhere, or style the page.
HOSTILE = {
    "script tag": "<script>window.__x=1</script>",
    "script in a block": "<div>\n<script>window.__x=1</script>\n</div>",
    "onerror attribute": '<img src="x" onerror="window.__x=1">',
    "svg onload": "<svg onload=window.__x=1></svg>",
    "iframe": '<iframe src="https://evil.example/"></iframe>',
    "style tag": "<style>body{display:none}</style>",
    "javascript link": "[click](javascript:window.__x=1)",
    "javascript link, mixed case": "[click](JaVaScRiPt:window.__x=1)",
    "javascript link, entity": "[click](&#106;avascript:window.__x=1)",
    "javascript link, autolink": "<javascript:window.__x=1>",
    "javascript reference link": "[click][r]\n\n[r]: javascript:window.__x=1",
    "vbscript link": "[click](vbscript:msgbox(1))",
    "data link": "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "data image": "![pic](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "image from another host": "![pixel](https://tracker.example/p.png)",
    "image, protocol-relative": "![pixel](//tracker.example/p.png)",
    "javascript image": "![pic](javascript:window.__x=1)",
    "raw html anchor": '<a href="javascript:window.__x=1" onclick="window.__x=2">x</a>',
    "html comment": "<!-- <script>window.__x=1</script> -->",
    "form": '<form action="https://evil.example/"><input name=p></form>',
}


def _tags(html: str) -> set[str]:
    return {t.lower() for t in re.findall(r"<([a-zA-Z][a-zA-Z0-9]*)", html)}


def assert_inert(html: str, allowed: set[str]) -> None:
    """No tag beyond allowed, no event handler or inline style, no script URL, no other site's image."""
    assert _tags(html) <= allowed, _tags(html) - allowed
    for tag in re.findall(r"<[a-zA-Z][^>]*>", html):
        assert not re.search(r"\son\w+\s*=", tag, re.I), tag
        assert "style=" not in tag.lower(), tag
        for url in re.findall(r'(?:href|src)="([^"]*)"', tag):
            assert not url.strip().lower().startswith(("javascript:", "vbscript:", "data:")), tag
        if tag.lower().startswith("<img"):
            assert markdown.same_site(re.search(r'src="([^"]*)"', tag).group(1)), tag


@pytest.mark.parametrize("source", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_markdown_is_inert(source):
    assert_inert(str(markdown.render(source)), markdown.TAGS - {"img"})


def test_hostile_markdown_shows_raw_html_as_text():
    html = str(markdown.render("\n\n".join(HOSTILE.values())))
    assert_inert(html, markdown.TAGS - {"img"})
    assert "&lt;script&gt;window.__x=1&lt;/script&gt;" in html  # shown as text, not run, not dropped silently
    assert '<a href="https://tracker.example/p.png" rel="nofollow noopener">' in html  # an image, as a link


def test_raw_html_is_text_and_markdown_still_works():
    html = str(markdown.render("# Title\n\n**bold** and *it* and `x < y`\n\n<b>raw</b>\n\n- a\n- b\n"))
    assert "<h1>Title</h1>" in html and "<strong>bold</strong>" in html and "<em>it</em>" in html
    assert "<code>x &lt; y</code>" in html and "&lt;b&gt;raw&lt;/b&gt;" in html and "<li>a</li>" in html


def test_links_get_nofollow_noopener_and_other_sites_images_become_links():
    html = str(markdown.render("[docs](https://pytorch.org/docs) ![plot](https://cdn.example/plot.png) "
                               "![local](plot.png)"))
    assert '<a href="https://pytorch.org/docs" rel="nofollow noopener">docs</a>' in html
    assert ('<a href="https://cdn.example/plot.png" rel="nofollow noopener">'
            "plot (an image on another site)</a>") in html
    assert '<img src="plot.png" alt="local">' in html and html.count("<img") == 1


def test_table_alignment_becomes_a_class_not_an_inline_style():
    # The CSP (style-src 'self') would block an inline style; a class from handout.css aligns instead.
    html = str(markdown.render("| n | name |\n|--:|:--|\n| 1 | a |"))
    assert '<th class="md-right">n</th>' in html and '<td class="md-left">a</td>' in html
    assert "style" not in html


def test_the_sanitiser_alone_holds_even_if_markdown_let_html_through():
    # The second layer, tested by itself: raw HTML straight into nh3 with the allow-list.
    html = markdown.clean('<p onclick="x">a</p><a href="javascript:x">b</a>'
                          '<img src="https://e.example/t.gif"><img src="data:image/png;base64,AAAA">'
                          '<script>x</script><td class="evil md-right">')
    assert html.startswith("<p>a</p>") and 'href="javascript' not in html and "<script" not in html
    assert "e.example" not in html and "data:" not in html and "evil" not in html


_IDS = itertools.count()


def _nb(*cells: dict) -> str:
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": list(cells)})


def _md(source: str | list[str]) -> dict:
    return {"cell_type": "markdown", "id": f"m{next(_IDS)}", "metadata": {}, "source": source}


def test_notebook_markdown_cells_are_rendered_and_code_cells_stay_text():
    html = str(notebook.render(_nb(
        _md("## Part 1\n\nUse **NumPy** only: [docs](https://numpy.org)"),
        {"cell_type": "code", "id": "c", "metadata": {}, "execution_count": 1,
         "source": "# **not markdown** <b>x</b>\nprint(1)",
         "outputs": [{"output_type": "stream", "name": "stdout", "text": "**1** <i>\n"}]})))
    assert "<h2>Part 1</h2>" in html and "<strong>NumPy</strong>" in html
    assert 'href="https://numpy.org" rel="nofollow noopener"' in html
    assert "# **not markdown** &lt;b&gt;x&lt;/b&gt;" in html  # a code cell's source is never Markdown
    assert "**1** &lt;i&gt;" in html and "<strong>1</strong>" not in html


@pytest.mark.parametrize("source", HOSTILE.values(), ids=HOSTILE.keys())
def test_notebook_markdown_cells_are_sanitised(source):
    html = str(notebook.render(_nb(_md(source), _md(["![x](", "https://tracker.example/a.png)"]))))
    assert_inert(html, markdown.TAGS | {"div"} - {"img"})


def test_a_markdown_cell_cannot_close_the_cell_wrapper():
    # A cell that tries to end the page's own markup stays inside its cell.
    html = str(notebook.render(_nb(_md("</div></div><h1>fake page</h1>"), _md("second"))))
    assert html.count('<div class="nb-cell nb-markdown">') == 2
    assert html.count("<div") == html.count("</div>")
