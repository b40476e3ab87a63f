"""How the artifact browser reads the file names `log_image` writes (this client's and older ones')
and the JSON `log_table` writes; what the stock client writes is covered end to end in
test_ui_views_browser.py."""

from __future__ import annotations

import json

from gateway.ui.previews import image_series, logged_table, series_view

UUID = "995f7957-bebb-421c-8ca6-adc05c3cddcf"


def test_image_series_reads_both_separators_and_both_key_escapes() -> None:
    names = [
        f"masks~a+step+0+timestamp+1700000000000+{UUID}.png",
        f"masks~a+step+0+timestamp+1700000000000+{UUID}+compressed.webp",
        f"old#key%step%3%timestamp%1700000000001%{UUID}.png",  # MLflow before the '+' separator
        "plot.png",  # not a series file
        f"masks~a+step+x+timestamp+1+{UUID}.png",  # not a step
    ]
    series = image_series([(name, f"/p/{name}") for name in names])
    assert [one.key for one in series] == ["masks/a", "old/key"]
    masks = series[0].images[0]
    assert (masks.url, masks.full_url) == (f"/p/{names[1]}", f"/p/{names[0]}")  # the small one in the grid
    assert series[1].images[3].step == 3


def test_series_view_shows_each_keys_latest_image_up_to_the_step() -> None:
    names = [f"a+step+{step}+timestamp+1+{UUID}.png" for step in (0, 5)] + [f"b+step+3+timestamp+1+{UUID}.png"]
    series = image_series([(name, name) for name in names])
    assert series_view(series, None)["step"] == 5  # the last step by default
    shown = {card["key"]: card["shown"]["step"] for card in series_view(series, 4)["series"]}
    assert shown == {"a": 0, "b": 3}
    assert series_view(series, 99)["step"] == 5  # past the last: the last
    assert {card["key"]: card["shown"]["step"] for card in series_view(series, 0)["series"]} == {"a": 0, "b": 3}


def test_logged_table_is_pandas_split_json_and_nothing_else() -> None:
    table = logged_table(json.dumps({"columns": ["q", "n"], "data": [["x", 1], ["y", None]]}))
    assert table == {"columns": ["q", "n"], "rows": [["x", "1"], ["y", "null"]]}
    for other in ('{"columns": ["a"]}', '{"columns": "a", "data": []}', '{"data": [1], "columns": []}', "[1]", "{"):
        assert logged_table(other) is None, other
    assert logged_table(json.dumps({"columns": ["a"], "data": [["x" * 600]], "extra": 1})) is None
    long = logged_table(json.dumps({"columns": ["a"], "data": [["x" * 600]]}))
    assert long is not None and len(long["rows"][0][0]) == 501  # cut, with an ellipsis
