"""`whole_number`: the one check of numbers read from a query string (API and UI)."""

from __future__ import annotations

import pytest

from gateway.http.errors import ApiError
from gateway.http.request_values import whole_number


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", 1), ("1000", 1000), ("0010", 10), ("0" * 5000 + "7", 7)],  # leading zeros do not count against int()
)
def test_whole_numbers_within_the_limit_are_read(text: str, value: int) -> None:
    assert whole_number(text, "page", 1000) == value


@pytest.mark.parametrize(
    "text",
    ["", "0", "0" * 5000, "1001", "-1", "+1", " 1", "1.0", "1e3", "²", "١", "9" * 5000],  # '١': Arabic-Indic one
)
def test_anything_else_is_a_400_that_names_the_parameter(text: str) -> None:
    with pytest.raises(ApiError) as raised:
        whole_number(text, "page", 1000)
    assert raised.value.status == 400
    assert raised.value.message.startswith("'page' must be a whole number from 1 to 1000, got '")
    assert len(raised.value.message) < 120  # a 5,000-digit value is not echoed whole
