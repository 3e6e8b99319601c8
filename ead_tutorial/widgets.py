"""Interactive sliders for the chapters, with a static figure for the website.

A chapter writes one drawing function, ``draw(ax, value)``, and uses it twice:

- :func:`slider` gives a live ipywidgets slider in Jupyter or Colab. Its cell is tagged
  ``remove-cell``, so the static website, where no kernel could redraw it, leaves it out.
- :func:`small_multiples` draws the same content for a few values side by side. The
  website shows that figure, so nothing on the page is a dead control.

Without ipywidgets, :func:`slider` draws once at the starting value and says how to get
the slider; that fallback runs under the tests.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import matplotlib.pyplot as plt

__all__ = ["slider", "small_multiples"]

Draw = Callable[[Any, float], None]


def _ipywidgets():
    """The ipywidgets module, or None where it is not installed."""
    try:
        import ipywidgets
    except ImportError:
        return None
    return ipywidgets


def slider(draw: Draw, values: Sequence[float], *, value: float | None = None, label: str = "value",
           figsize: tuple[float, float] = (5.0, 3.5)):
    """A slider over ``values`` that redraws ``draw(ax, value)`` on a fresh figure at each move.

    ``value`` is where the slider starts (default: the middle of ``values``). Displays the
    slider and returns None. When ipywidgets is missing, the figure is drawn once at ``value``.
    """
    values = list(values)
    if not values:
        raise ValueError("slider needs at least one value")
    start = values[len(values) // 2] if value is None else value
    if start not in values:
        raise ValueError(f"value={start!r} is not one of the slider's values {values}")

    def redraw(**chosen: float) -> None:
        fig, ax = plt.subplots(figsize=figsize)
        draw(ax, chosen[label])
        plt.show()

    widgets = _ipywidgets()
    if widgets is None:
        print("ipywidgets is not installed, so this is a still at "
              f"{label} = {start}; `pip install ipywidgets` gives the slider.")
        redraw(**{label: start})
        return None
    from IPython.display import display

    control = widgets.SelectionSlider(options=values, value=start, description=label, continuous_update=False)
    display(widgets.interactive(redraw, **{label: control}))
    return None


def small_multiples(draw: Draw, values: Sequence[float], *, label: str = "value", ncols: int | None = None,
                    panel_size: tuple[float, float] = (3.2, 2.6), sharey: bool = True):
    """One panel per value in ``values``, each drawn by ``draw(ax, value)`` and titled ``label = value``.

    Returns the matplotlib figure.
    """
    values = list(values)
    ncols = ncols or len(values)
    nrows = -(-len(values) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size[0] * ncols, panel_size[1] * nrows),
                             sharey=sharey, squeeze=False, layout="constrained")
    for ax, value in zip(axes.flat, values):
        draw(ax, value)
        ax.set_title(f"{label} = {value:g}" if isinstance(value, (int, float)) else f"{label} = {value}")
    for ax in list(axes.flat)[len(values):]:
        ax.set_visible(False)
    return fig
