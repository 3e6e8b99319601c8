"""Every chapter has learning goals at the top, a summary and exercises at the end, and
links to the chapters it builds on."""

import re

import pytest

from tools import sync_book

CHAPTERS = sync_book.chapters()


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_has_goals_summary_exercises_and_links_back(source):
    text = source.read_text()
    headings = re.findall(r"^## (.+)$", text, re.M)
    goals = text.find("{admonition} Learning goals")
    assert goals != -1, f"{source.name}: no 'Learning goals' admonition"
    assert not headings or goals < text.index(f"## {headings[0]}"), f"{source.name}: goals must come first"
    assert "Summary" in headings, f"{source.name}: no '## Summary'"
    assert "Exercises" in headings, f"{source.name}: no '## Exercises'"
    if source.stem != "intro":
        builds_on = re.search(r"^Builds on: (.+)$", text, re.M)
        assert builds_on and "{doc}" in builds_on.group(1), f"{source.name}: no 'Builds on:' line with links"


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_has_one_front_matter_and_one_title(source):
    # A second front-matter block becomes a markdown cell, and the title after it an H1
    # that the website build rejects.
    text = source.read_text()
    assert text.startswith("---\njupytext:\n"), f"{source.name}: front matter must open the file"
    blocks = re.findall(r"^jupytext:$", text, re.M)
    assert len(blocks) == 1, f"{source.name}: {len(blocks)} front-matter blocks, expected one"
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    titles = re.findall(r"^# .+$", prose, re.M)
    assert len(titles) == 1, f"{source.name}: expected one '# title', found {titles}"
