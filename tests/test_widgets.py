"""Sliders with a static fallback: the live widget, the path without ipywidgets, and the chapters' use of both."""

from __future__ import annotations

import re

import jupytext
import matplotlib.pyplot as plt
import pytest

from ead_tutorial import widgets
from tools import sync_book


def _recording_draw(calls):
    def draw(ax, value):
        calls.append(value)
        ax.plot([0, 1], [0, value])

    return draw


def test_slider_without_ipywidgets_draws_once_at_the_start_and_says_why(monkeypatch, capsys):
    monkeypatch.setattr(widgets, "_ipywidgets", lambda: None)
    calls = []
    assert widgets.slider(_recording_draw(calls), [0.0, 1.0, 2.0], value=2.0, label="kappa") is None
    assert calls == [2.0]
    assert "pip install ipywidgets" in capsys.readouterr().out
    plt.close("all")


def test_slider_with_ipywidgets_starts_in_the_middle_and_redraws_on_change(monkeypatch):
    ipywidgets = pytest.importorskip("ipywidgets")
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda widget: shown.append(widget))
    calls = []
    widgets.slider(_recording_draw(calls), [0.0, 10.0, 20.0, 30.0, 40.0], label="kappa")
    (panel,) = shown
    assert isinstance(panel, ipywidgets.interactive)
    control = panel.children[0]
    assert control.description == "kappa" and control.value == 20.0 and calls == [20.0]
    control.value = 40.0
    assert calls == [20.0, 40.0]
    plt.close("all")


def test_slider_rejects_a_start_that_is_not_a_value():
    with pytest.raises(ValueError, match="not one of the slider's values"):
        widgets.slider(lambda ax, v: None, [1, 2], value=3)
    with pytest.raises(ValueError, match="at least one value"):
        widgets.slider(lambda ax, v: None, [])


def test_small_multiples_draws_one_titled_panel_per_value():
    calls = []
    fig = widgets.small_multiples(_recording_draw(calls), [0, 0.5, 1, 2, 4], label="beta", ncols=3)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert calls == [0, 0.5, 1, 2, 4] and len(visible) == 5 and len(fig.axes) == 6
    assert [ax.get_title() for ax in visible] == ["beta = 0", "beta = 0.5", "beta = 1", "beta = 2", "beta = 4"]
    plt.close(fig)


def _slider_chapters():
    found = {}
    for source in sync_book.chapters():
        cells = [c for c in jupytext.read(source).cells if c.cell_type == "code"]
        sliders = [c for c in cells if re.search(r"\bslider\(", c.source)]
        if sliders:
            found[source.stem] = (sliders, cells)
    return found


def test_at_least_three_chapters_have_a_slider():
    assert len(_slider_chapters()) >= 3, sorted(_slider_chapters())


@pytest.mark.parametrize("chapter", sorted(_slider_chapters()))
def test_every_slider_has_a_static_figure_on_the_website(chapter):
    sliders, cells = _slider_chapters()[chapter]
    for cell in sliders:  # the live slider is left out of the static site, which cannot redraw it ...
        assert "remove-cell" in cell.metadata.get("tags", []), f"tag the slider cell in {chapter} remove-cell"
    static = [c for c in cells if "small_multiples(" in c.source and "remove-cell" not in c.metadata.get("tags", [])]
    assert len(static) >= len(sliders), f"{chapter}: each slider needs a visible small_multiples figure"  # ... which shows this
