"""Item-level aggregation of point levels: the rule of GB 39496-2020 §5.5.4.

For monitoring points of the same item (all piezometers of a pond, all GNSS stations ...):
4 points at blue make the item yellow, 3 points at yellow make it orange, 2 points at orange make
it red; points at a higher level count for the lower ones (docs/requirements.md R6, a MineWatch reading of
"达到"). The item's level is the highest of that and its highest point level. The rule is a
tailings-pond rule, so callers enable it per item (on by default for tailings items only); a
disabled item's level is just its highest point level. Pure: arrays in, arrays out.

>>> import numpy as np
>>> levels = np.array([1, 1, 1, 1, 0, 3, 3], dtype=np.int8)  # 4 blue piezometers, 2 orange GNSS
>>> items = np.array([0, 0, 0, 0, 0, 1, 1])
>>> item_levels(levels, items, 2, np.array([True, True]))[0].tolist()
[2, 4]
"""

from __future__ import annotations

import numpy as np

__all__ = ["RULE", "item_levels"]

# (points needed, level they must be at or above, level the item gets)
RULE = ((4, 1, 2), (3, 2, 3), (2, 3, 4))


def item_levels(point_levels: np.ndarray, item_of_point: np.ndarray, n_items: int,
                enabled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per item: (level int8[n_items], counts int64[n_items, 4] of points at >= blue..red)."""
    levels = np.asarray(point_levels, dtype=np.int64)
    items = np.asarray(item_of_point, dtype=np.int64)
    counts = np.zeros((n_items, 4), dtype=np.int64)
    for k in range(4):
        counts[:, k] = np.bincount(items, weights=levels >= k + 1, minlength=n_items)
    highest = np.zeros(n_items, dtype=np.int64)
    np.maximum.at(highest, items, levels)
    out = highest.copy()
    for need, at_least, gives in RULE:
        lifted = enabled & (counts[:, at_least - 1] >= need)
        out[lifted] = np.maximum(out[lifted], gives)
    return out.astype(np.int8), counts
