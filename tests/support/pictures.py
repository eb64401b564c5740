"""Looking at pictures in tests: a PNG's panels and the lines drawn in each."""

from __future__ import annotations

from typing import Any

# matplotlib's first two colours (tab:blue, tab:orange): the hosts' lines
HOST_COLOURS = [(0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)]


def check_panels(image: Any, panels: int, hosts: int) -> None:
    """Each panel (columns of equal width) holds every host's colour, enough pixels of it to be a line."""
    width, height = image.size
    pixels = image.load()
    for panel in range(panels):
        left, right = panel * width // panels, (panel + 1) * width // panels
        for colour in HOST_COLOURS[:hosts]:
            found = sum(1 for x in range(left, right) for y in range(height)
                        if all(abs(a - b) <= 40 for a, b in zip(pixels[x, y], colour, strict=True)))
            assert found > 150, (panel, colour, found)
