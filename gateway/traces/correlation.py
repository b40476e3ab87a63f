"""`traces/calculate-filter-correlation`: how two trace filters co-occur (normalized pointwise mutual
information, NPMI, with and without Jeffreys smoothing), computed as MLflow's SQL store does."""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from gateway.http.errors import ApiError
from gateway.traces import search_filter
from gateway.traces.request_fields import string, string_list, trace_store

JEFFREYS_PRIOR = 0.5


def _npmi_core(n11: float, n10: float, n01: float, n00: float, smoothing: float) -> float:
    s11, s10, s01, s00 = (n + smoothing for n in (n11, n10, n01, n00))
    total, n1, n2 = s11 + s10 + s01 + s00, s11 + s10, s11 + s01
    if n1 <= 0 or n2 <= 0 or s11 <= 0:
        return math.nan
    if n10 == 0 and n01 == 0 and n00 == 0:
        return 1.0
    pmi = (math.log(s11) + math.log(total)) - (math.log(n1) + math.log(n2))
    return max(-1.0, min(1.0, pmi / -(math.log(s11) - math.log(total))))


def npmi(joint: int, first: int, second: int, total: int) -> tuple[float, float]:
    """(NPMI, smoothed NPMI) of two events from their counts; NaN where undefined."""
    if total <= 0 or first == 0 or second == 0:
        return math.nan, math.nan
    n11, n10, n01 = joint, first - joint, second - joint
    n00 = total - first - second + joint
    if min(n11, n10, n01, n00) < 0:
        return math.nan, math.nan
    plain = -1.0 if joint == 0 else _npmi_core(n11, n10, n01, n00, 0)
    return plain, _npmi_core(n11, n10, n01, n00, JEFFREYS_PRIOR)


def _number(value: float) -> float | str:
    return "NaN" if math.isnan(value) else value  # protobuf JSON's NaN


async def calculate_filter_correlation(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    experiment_ids: list[object] = list(string_list(fields, "experiment_ids"))
    if not experiment_ids:
        raise ApiError.invalid("Missing value for required parameter 'experiment_ids'.")
    first = search_filter.parse(string(fields, "filter_string1", required=True))
    second = search_filter.parse(string(fields, "filter_string2", required=True))
    base = search_filter.parse(string(fields, "base_filter"))
    total, count1, count2, joint = await trace_store(request).count_traces(
        experiment_ids, [base, base + first, base + second, base + first + second]
    )
    plain, smoothed = npmi(joint, count1, count2, total)
    return {
        "npmi": _number(plain),
        "npmi_smoothed": _number(smoothed),
        "filter1_count": count1,
        "filter2_count": count2,
        "joint_count": joint,
        "total_count": total,
    }
