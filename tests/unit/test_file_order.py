"""The daemon keeps its instances and groups in the config file's order across reloads."""

from __future__ import annotations

from hakeeper.daemon import file_order


def test_a_re_added_name_goes_back_to_its_place_in_the_same_dict() -> None:
    items = {"VI_1": 1, "VI_3": 3, "VI_2": 2}  # VI_2 was removed and added back: now last
    same = items
    file_order(items, ["VI_1", "VI_2", "VI_3"])
    assert list(items) == ["VI_1", "VI_2", "VI_3"]
    assert items is same and items == {"VI_1": 1, "VI_2": 2, "VI_3": 3}  # views hold it


def test_names_not_in_the_file_keep_their_order_after_the_others() -> None:
    items = {"gone": 0, "b": 2, "a": 1}
    file_order(items, ["a", "b", "new"])
    assert list(items) == ["a", "b", "gone"]


def test_nothing_moves_when_the_order_is_already_the_files() -> None:
    items = {"a": 1, "b": 2}
    file_order(items, ["a", "x", "b"])
    assert list(items) == ["a", "b"]
