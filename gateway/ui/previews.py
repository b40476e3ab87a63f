"""What the artifact browser recognises in MLflow's own artifacts: `log_image` series and `log_table` JSON.

`mlflow.log_image(image, key=..., step=...)` writes `images/<key>+step+<n>+timestamp+<ms>+<uuid>.png`
and a small `...+compressed.webp` beside it (older clients used `%` for `+`, and `#` for a `/` in the
key, now `~`); the browser shows a folder holding them as a grid, one card per key, with a step slider.
`mlflow.log_table` writes pandas' "split" JSON (`{"columns": [...], "data": [[...], ...]}`), shown as
a table.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

IMAGE_SERIES_FILE = re.compile(
    r"^(?P<key>.+?)(?P<sep>[+%])step(?P=sep)(?P<step>-?\d+)(?P=sep)timestamp(?P=sep)(?P<timestamp>\d+)"
    r"(?P=sep)(?P<uuid>[0-9a-fA-F-]+)(?P<compressed>(?P=sep)compressed)?\.(?P<ext>png|webp|jpe?g)$"
)
TABLE_CELL_CHARS = 500
"""A table cell's text is cut here; the download has the rest."""


@dataclass
class SeriesImage:
    step: int
    timestamp: int
    url: str
    """The image the grid shows (the compressed one when there is one)."""
    full_url: str
    """The full-resolution image's page."""


@dataclass
class ImageSeries:
    key: str
    images: dict[int, SeriesImage] = field(default_factory=dict)


def image_series(names_and_urls: list[tuple[str, str]]) -> list[ImageSeries]:
    """The `log_image` series among a folder's files, given as (file name, page URL), by key."""
    found: dict[str, ImageSeries] = {}
    for name, url in names_and_urls:
        match = IMAGE_SERIES_FILE.match(name)
        if match is None:
            continue
        key = match["key"].replace("~", "/").replace("#", "/")
        step = int(match["step"])
        series = found.setdefault(key, ImageSeries(key))
        known = series.images.get(step)
        compressed = match["compressed"] is not None
        if known is None:
            series.images[step] = SeriesImage(step, int(match["timestamp"]), url, url)
        elif compressed:
            known.url = url  # the small image for the grid; the full one stays linked
        else:
            known.full_url = url
    return [found[key] for key in sorted(found)]


def series_view(series: list[ImageSeries], wanted: int | None) -> dict[str, Any]:
    """The grid's data: every step of every series, and the step shown (`wanted`, else the last)."""
    steps = sorted({step for one in series for step in one.images})
    if not steps:
        return {"steps": [], "step": None, "series": []}
    chosen = wanted if wanted is not None and steps[0] <= wanted <= steps[-1] else steps[-1]
    cards = []
    for one in series:
        images = [asdict(one.images[step]) for step in sorted(one.images)]
        # A key without an image at the chosen step shows its latest one before it (or its first).
        shown = next((image for image in reversed(images) if image["step"] <= chosen), images[0])
        cards.append({"key": one.key, "shown": shown, "images": images})
    return {"steps": steps, "step": chosen, "series": cards}


def logged_table(text: str) -> dict[str, Any] | None:
    """A `log_table` file's header and rows (cells as text), or None when `text` is not one."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict) or set(document) - {"columns", "data", "index"}:
        return None
    columns, data = document.get("columns"), document.get("data")
    if not isinstance(columns, list) or not isinstance(data, list) or not all(isinstance(r, list) for r in data):
        return None
    return {"columns": [_cell(c) for c in columns], "rows": [[_cell(c) for c in row] for row in data]}


def _cell(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= TABLE_CELL_CHARS else text[:TABLE_CELL_CHARS] + "…"
