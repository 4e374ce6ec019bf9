"""Parsing of the single-file formats: txt, md, html, pdf, docx."""

from __future__ import annotations

from pathlib import Path

from datawheel.sources import Section

from .helpers import make_docx, make_pdf, run


def load_one(path: Path):  # type: ignore[no-untyped-def]
    (item,), failures = run(path)
    assert failures == []
    return item.load()


def test_txt_title_is_the_stem_and_paragraphs_split_on_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "meeting notes.txt"
    path.write_text("First  paragraph\nstill first.\n\n\n  Second paragraph.  \n", "utf-8")
    doc = load_one(path)
    assert doc.title == "meeting notes"
    assert doc.sections == [Section((), "First paragraph\nstill first.\n\nSecond paragraph.")]
    assert doc.metadata["kind"] == "txt"


MARKDOWN = """---
title: Returns Policy
author: Dana Ortiz
date: 2025-01-15
topic: returns
tags: [policy, support]
groups: [support, finance]
owner_team: cx
---

# Returns Policy

Intro paragraph with a [link](https://example.com) and ![an image](x.png).

## Windows

Thirty days.

```python
# not a heading
print("code")
```

### Holiday extension

Until January 31.

Setext Heading
--------------

Under setext.
"""


def test_markdown_front_matter_becomes_metadata(tmp_path: Path) -> None:
    path = tmp_path / "refunds.md"
    path.write_text(MARKDOWN, "utf-8")
    doc = load_one(path)
    assert doc.title == "Returns Policy"
    meta = doc.metadata
    assert meta["kind"] == "md"
    assert meta["author"] == "Dana Ortiz"
    assert meta["date"] == "2025-01-15"
    assert meta["topic"] == "returns"
    assert meta["tags"] == ["policy", "support"]
    assert meta["groups"] == ["support", "finance"]
    assert meta["owner_team"] == "cx"


def test_markdown_headings_become_heading_paths(tmp_path: Path) -> None:
    path = tmp_path / "refunds.md"
    path.write_text(MARKDOWN, "utf-8")
    doc = load_one(path)
    paths = [s.heading_path for s in doc.sections]
    # the H1 repeats the title, so paths start below it
    assert paths == [(), ("Windows",), ("Windows", "Holiday extension"), ("Setext Heading",)]
    assert doc.sections[0].text == "Intro paragraph with a link and an image."
    assert "# not a heading" in doc.sections[1].text
    assert doc.sections[2].text == "Until January 31."


def test_documentation_site_markup_never_reaches_titles_or_text(tmp_path: Path) -> None:
    path = tmp_path / "settings.md"
    path.write_text(
        "# Settings { #settings }\n\n"
        '<div class="termy">\n\n'
        "/// tip\n\nUse `debug=True` only in development.\n\n///\n\n"
        "{!> ../../docs_src/settings/app01.py !}\n\n"
        "## Debug { #debug .important }\n\nDefaults to `False`.\n\n</div>\n",
        "utf-8",
    )
    doc = load_one(path)
    assert doc.title == "Settings"
    assert [s.heading_path for s in doc.sections] == [(), ("Debug",)]
    assert doc.sections[0].text == "Use `debug=True` only in development."
    assert doc.sections[1].text == "Defaults to `False`."


def test_markdown_without_front_matter_uses_h1_or_stem(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Real Title\n\nBody.\n", "utf-8")
    (tmp_path / "b.markdown").write_text("No heading here.\n", "utf-8")
    items, _ = run(tmp_path)
    docs = [item.load() for item in items]
    assert [d.title for d in docs] == ["Real Title", "b"]
    assert docs[0].metadata["author"] is None
    assert "groups" not in docs[0].metadata


HTML = """<!doctype html><html><head><title>Shipping Policy</title>
<style>p { color: red }</style><script>var x = "hidden";</script></head>
<body><nav><a href="/">Home</a> | <a href="/about">About</a></nav>
<h1>Shipping Policy</h1><p>We ship <b>fast</b>.<br>Really fast.</p>
<h2>Carriers</h2><ul><li>UPS ground</li><li>FedEx</li></ul>
<table><tr><th>Zone</th><th>Days</th></tr><tr><td>West</td><td>2</td></tr></table>
<h2>Cut-off</h2><p>Orders before 2pm.</p><script>track()</script></body></html>"""


def test_html_drops_script_style_nav_and_keeps_sections(tmp_path: Path) -> None:
    path = tmp_path / "shipping.html"
    path.write_text(HTML, "utf-8")
    doc = load_one(path)
    assert doc.title == "Shipping Policy"
    assert doc.metadata["kind"] == "html"
    text = doc.text
    for gone in ("hidden", "color", "Home", "About", "track"):
        assert gone not in text
    assert [s.heading_path for s in doc.sections] == [(), ("Carriers",), ("Cut-off",)]
    assert doc.sections[0].text == "We ship fast.\nReally fast."
    assert doc.sections[1].text == "UPS ground\n\nFedEx\n\nZone | Days\n\nWest | 2"


def test_html_keeps_the_page_content_not_the_site_chrome(tmp_path: Path) -> None:
    chrome = "<header>Acme Help Center</header>{}<footer>(c) Acme. Cookie settings</footer>"
    article = "<h1>Returns</h1><p>Return items within 30 days.</p><footer>By Sam</footer>"
    marked = tmp_path / "marked.html"
    marked.write_text(
        "<html><body>" + chrome.format(f"<main>{article}</main><aside>Ads</aside>") + "</body>",
        "utf-8",
    )
    bare = tmp_path / "bare.html"
    bare.write_text("<html><body>" + chrome.format(f"<article>{article}</article>"), "utf-8")
    for path in (marked, bare):
        text = load_one(path).text
        assert "Return items within 30 days." in text and "By Sam" in text, path.name
        for gone in ("Acme Help Center", "Cookie settings", "Ads"):
            assert gone not in text, (path.name, gone)


def test_html_title_falls_back_to_first_h1(tmp_path: Path) -> None:
    path = tmp_path / "page.htm"
    path.write_text("<html><body><h1>Only H1</h1><p>Text.</p></body></html>", "utf-8")
    doc = load_one(path)
    assert doc.title == "Only H1"
    assert doc.sections == [Section((), "Text.")]


def test_pdf_text_layer_and_metadata(tmp_path: Path) -> None:
    path = tmp_path / "manual.pdf"
    path.write_bytes(
        make_pdf(
            [["Safety first (always).", "Wear gloves."], ["Page two: cleaning."]],
            title="Tent Manual",
            author="Owen Ruiz",
        )
    )
    doc = load_one(path)
    assert doc.title == "Tent Manual"
    assert doc.metadata["kind"] == "pdf"
    assert doc.metadata["author"] == "Owen Ruiz"
    assert doc.metadata["pages"] == 2
    assert "Safety first (always)." in doc.text
    assert "Page two: cleaning." in doc.text


def test_docx_headings_from_paragraph_styles(tmp_path: Path) -> None:
    doc = load_one(make_docx(tmp_path / "notes.docx"))
    assert doc.title == "Compiler Notes"
    assert doc.metadata["kind"] == "docx"
    assert doc.metadata["author"] == "Grace Hopper"
    assert doc.metadata["tags"] == ["compilers", "navy"]
    assert doc.metadata["date"]  # python-docx stamps created/modified
    assert [s.heading_path for s in doc.sections] == [
        (),
        ("Design",),
        ("Design", "Parser"),
        ("Testing",),
    ]
    assert doc.sections[2].text == "The parser is hand written.\n\nPass | Time\n\nLexing | 12 ms"


def test_front_matter_values_are_json_safe(tmp_path: Path) -> None:
    import json

    path = tmp_path / "x.md"
    path.write_text(
        "---\nreviewed: 2024-05-06\nhistory:\n  - when: 2024-01-02\n    who: ana\n---\nBody.\n",
        "utf-8",
    )
    meta = load_one(path).metadata
    assert meta["reviewed"] == "2024-05-06"
    assert meta["history"] == [{"when": "2024-01-02", "who": "ana"}]
    json.dumps(meta)


def test_pdf_outline_becomes_heading_paths(tmp_path: Path) -> None:
    import io

    from pypdf import PdfReader, PdfWriter

    pages = [["Intro text."], ["Setup details."], ["Usage details."]]
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(pages, title="Manual"))))
    setup = writer.add_outline_item(title="Setup", page_number=1)
    writer.add_outline_item(title="Usage", page_number=2, parent=setup)
    path = tmp_path / "manual.pdf"
    with path.open("wb") as handle:
        writer.write(handle)
    doc = load_one(path)
    assert [(s.heading_path, s.text) for s in doc.sections] == [
        ((), "Intro text."),
        (("Setup",), "Setup details."),
        (("Setup", "Usage"), "Usage details."),
    ]
