"""GB 39496-2020 §5.5.4 item aggregation as a pure function (docs/requirements.md R6 test vectors)."""

from __future__ import annotations

import numpy as np

from detectors.aggregate import item_levels


def test_rule_vectors_counting_points_at_or_above() -> None:
    on = np.array([True])
    one_item = np.zeros(4, dtype=np.int64)
    assert item_levels(np.array([1, 1, 1, 1]), one_item, 1, on)[0][0] == 2  # 4 blue -> yellow
    assert item_levels(np.array([1, 1, 1, 0]), one_item, 1, on)[0][0] == 1
    assert item_levels(np.array([2, 2, 3, 0]), one_item, 1, on)[0][0] == 3  # 3 >= yellow -> orange
    assert item_levels(np.array([3, 4, 0, 0]), one_item, 1, on)[0][0] == 4  # 2 >= orange -> red
    level, counts = item_levels(np.array([4, 1, 2, 0]), one_item, 1, on)
    assert level[0] == 4 and counts[0].tolist() == [3, 2, 1, 1]


def test_disabled_items_take_their_highest_point_level() -> None:
    levels = np.array([1, 1, 1, 1, 3, 3])
    items = np.array([0, 0, 0, 0, 1, 1])
    got, _ = item_levels(levels, items, 2, np.array([False, False]))
    assert got.tolist() == [1, 3]
