"""The data the compare view's charts draw (static/compare_charts.js): each run's params and latest
metrics, the keys to choose from, and the parallel-coordinates axes shown before any is chosen."""

from __future__ import annotations

from typing import Any

DEFAULT_AXES_PER_KIND = 4


def compare_plot_data(
    runs: list[dict[str, Any]], params: list[dict[str, Any]], metric_keys: list[str]
) -> dict[str, Any]:
    """`runs` as `run_row` gives them; `params` the compare table's rows (key, values, differs)."""
    param_keys = sorted({key for run in runs for key in run["params"]})
    differing = [param["key"] for param in params if param["differs"]]
    return {
        "runs": [
            {
                "id": run["run_id"],
                "name": run.get("run_name") or run["run_id"],
                "params": run["params"],
                "metrics": run["metrics"],
            }
            for run in runs
        ],
        "params": param_keys,
        "metrics": metric_keys,
        "default_axes": [f"params.{key}" for key in differing[:DEFAULT_AXES_PER_KIND]]
        + [f"metrics.{key}" for key in metric_keys[:DEFAULT_AXES_PER_KIND]],
    }
