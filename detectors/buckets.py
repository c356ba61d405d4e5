"""Time buckets: a bounded, per-channel summary of a long time window (numba helpers).

A channel's window is a ring of B buckets of `width` seconds; bucket q holds the samples with
floor(t / width) == q as a count, a sum of times (relative to the bucket start, so float64 keeps
sub-millisecond resolution at epoch times) and a sum of values. The window is the B buckets up to
the newest one, so a 24-hour window at one sample a second costs B x 4 numbers, not 86 400.
Irregular sampling and gaps need nothing special: an empty bucket is simply absent. A sample older
than the window is ignored.

A bucket holds at least one sample period (`bucket_width`): the configured width is a minimum,
so daily GNSS solutions get daily buckets and a window of n_buckets days, not a 24-hour window
that never holds two of them.

Used by the rate, tangent-angle and inverse-velocity detectors. Inlined into their kernels (see
`detectors.grading` about the numba cache after editing this file).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["NO_BUCKET", "BUCKET_STATE", "bucket_add", "bucket_means", "bucket_width",
           "theil_sen", "slope_se", "ls_fit", "median_prefix", "older_pairs_spec",
           "theil_sen_window", "kth_of_two", "only_newest_changed"]

NO_BUCKET = -(1 << 62)  # id of a slot that never held a sample

# name -> (dtype, per-bucket?, initial value) of the ring in a detector's state
BUCKET_STATE = {
    "b_id": (np.int64, True, NO_BUCKET),
    "b_n": (np.int32, True, 0),
    "b_st": (np.float64, True, 0.0),
    "b_sx": (np.float64, True, 0.0),
    "last_id": (np.int64, False, NO_BUCKET),
    "b_w": (np.float64, False, np.nan),  # the ring's bucket width (s): see `bucket_width`
}


@numba.njit(cache=True, nogil=True, inline="always")
def bucket_add(i, t, v, width, b_id, b_n, b_st, b_sx, last_id):
    """Add sample (t, v) to channel i's ring; False (and nothing changes) if it is too old."""
    nb = b_id.shape[1]
    q = np.int64(np.floor(t / width))
    if q <= last_id[i] - nb:
        return False
    slot = q % nb
    if b_id[i, slot] != q:  # the slot held a bucket that has left the window
        b_id[i, slot] = q
        b_n[i, slot] = 0
        b_st[i, slot] = 0.0
        b_sx[i, slot] = 0.0
    b_n[i, slot] += 1
    b_st[i, slot] += t - q * width
    b_sx[i, slot] += v
    if q > last_id[i]:
        last_id[i] = q
    return True


@numba.njit(cache=True, nogil=True, inline="always")
def bucket_width(i, bucket_s, period, b_id, b_n, b_st, b_sx, last_id, b_w):
    """Channel i's bucket width: the configured `bucket_s`, or the sample period when that is
    longer. The ring starts afresh when the width has to change by a factor of 2 or more (a
    cadence that changed for good; a device's abnormal period does not come near it)."""
    want = bucket_s if not np.isfinite(period) else max(bucket_s, period)
    w = b_w[i]
    if np.isfinite(w) and want < 2.0 * w and want > 0.5 * w:
        return w
    b_w[i] = want
    for u in range(b_id.shape[1]):
        b_id[i, u] = NO_BUCKET
        b_n[i, u] = 0
        b_st[i, u] = 0.0
        b_sx[i, u] = 0.0
    last_id[i] = NO_BUCKET
    return want


@numba.njit(cache=True, nogil=True, inline="always")
def bucket_means(i, width, b_id, b_n, b_st, b_sx, last_id, tm, xm, nm):
    """Fill tm, xm, nm with the non-empty buckets of channel i's window, oldest first; return how
    many. tm is the mean time relative to the start of the window's first bucket (s)."""
    nb = b_id.shape[1]
    first = last_id[i] - nb + 1
    k = 0
    for q in range(first, last_id[i] + 1):
        slot = q % nb
        if b_id[i, slot] == q and b_n[i, slot] > 0:
            c = b_n[i, slot]
            tm[k] = (q - first) * width + b_st[i, slot] / c
            xm[k] = b_sx[i, slot] / c
            nm[k] = c
            k += 1
    return k


@numba.njit(cache=True, nogil=True, inline="always")
def median_prefix(a, k):
    """The median of a[:k] (NaN if k == 0), the value sorting would give, found by selection
    (Hoare's quickselect, median-of-three pivot) in O(k) instead of sorting in O(k^2): a
    Theil-Sen window of 24 buckets has 276 slopes, recomputed with every sample. Reorders a[:k];
    allocates nothing."""
    if k == 0:
        return np.nan
    h = k // 2
    lo = 0
    hi = k - 1
    while hi > lo:
        mid = (lo + hi) // 2
        if a[mid] < a[lo]:
            a[mid], a[lo] = a[lo], a[mid]
        if a[hi] < a[lo]:
            a[hi], a[lo] = a[lo], a[hi]
        if a[hi] < a[mid]:
            a[hi], a[mid] = a[mid], a[hi]
        pivot = a[mid]
        u = lo
        w = hi
        while u <= w:
            while a[u] < pivot:
                u += 1
            while a[w] > pivot:
                w -= 1
            if u <= w:
                a[u], a[w] = a[w], a[u]
                u += 1
                w -= 1
        if h <= w:
            hi = w
        elif h >= u:
            lo = u
        else:
            break
    if k % 2:
        return a[h]
    below = a[0]  # the largest of a[:h], every one of which is <= a[h]
    for u in range(1, h):
        if a[u] > below:
            below = a[u]
    return 0.5 * (below + a[h])


@numba.njit(cache=True, nogil=True, inline="always")
def theil_sen(tm, xm, k, pairs):
    """Median of the pairwise slopes of k points (NaN if k < 2): one bad bucket cannot move it."""
    m = 0
    for a in range(k):
        for b in range(a + 1, k):
            pairs[m] = (xm[b] - xm[a]) / (tm[b] - tm[a])
            m += 1
    return median_prefix(pairs, m)


@numba.njit(cache=True, nogil=True, inline="always")
def slope_se(tm, xm, k, slope):
    """Standard error of a slope through k points from their scatter about it (inf if k < 3)."""
    if k < 3:
        return np.inf
    mt = 0.0
    mx = 0.0
    for u in range(k):
        mt += tm[u]
        mx += xm[u]
    mt /= k
    mx /= k
    stt = 0.0
    ss = 0.0
    for u in range(k):
        r = xm[u] - mx - slope * (tm[u] - mt)
        ss += r * r
        stt += (tm[u] - mt) ** 2
    return np.sqrt(ss / (k - 2) / stt) if stt > 0 else np.inf


@numba.njit(cache=True, nogil=True, inline="always")
def ls_fit(tt, yy, start, k):
    """Least squares y = c0 + c1 t over points start..start+k-1: (c0, c1, R^2); NaN if k < 2 or
    the times do not spread. R^2 is 1 for a perfect line (and for a flat y that the line fits)."""
    if k < 2:
        return np.nan, np.nan, np.nan
    mt = 0.0
    my = 0.0
    for u in range(start, start + k):
        mt += tt[u]
        my += yy[u]
    mt /= k
    my /= k
    stt = 0.0
    sty = 0.0
    syy = 0.0
    for u in range(start, start + k):
        dt = tt[u] - mt
        dy = yy[u] - my
        stt += dt * dt
        sty += dt * dy
        syy += dy * dy
    if stt <= 0.0:
        return np.nan, np.nan, np.nan
    c1 = sty / stt
    c0 = my - c1 * mt
    r2 = 1.0 if syy <= 0.0 else sty * sty / (stt * syy)
    return c0, c1, r2


def older_pairs_spec(n_buckets: int) -> dict:
    """State entries of `theil_sen_window`: per channel the sorted pairwise slopes among the
    window's older buckets, how many, and the newest bucket they were taken beside. Derived
    from the ring alone, so a checkpoint without them loads (`ChannelDetector.derived`)."""
    return {"ts_old": (np.float64, (max(1, n_buckets * (n_buckets - 1) // 2),), np.nan),
            "ts_n": (np.int32, (), 0),
            "ts_q": (np.int64, (), NO_BUCKET)}


@numba.njit(cache=True, nogil=True, inline="always")
def _sort_prefix(a, n):
    """Sort a[:n] in place (insertion sort: n is a window's pair count, done once a bucket)."""
    for u in range(1, n):
        x = a[u]
        w = u - 1
        while w >= 0 and a[w] > x:
            a[w + 1] = a[w]
            w -= 1
        a[w + 1] = x


@numba.njit(cache=True, nogil=True, inline="always")
def kth_of_two(a, na, b, nb, k):
    """The k-th smallest (0-based) of the sorted a[:na] and b[:nb] together, without merging
    them: a binary search for how many of the first k + 1 come from a."""
    lo = max(0, k + 1 - nb)
    hi = min(na, k + 1)
    while lo < hi:
        mid = (lo + hi) // 2
        if a[mid] < b[k - mid]:  # a[mid] is among the first k + 1: take more from a
            lo = mid + 1
        else:
            hi = mid
    j = k + 1 - lo
    if lo == 0:
        return b[j - 1]
    if j == 0:
        return a[lo - 1]
    return max(a[lo - 1], b[j - 1])


@numba.njit(cache=True, nogil=True, inline="always")
def only_newest_changed(i, w, w_was, held, pt, now, t, last_id):
    """Whether a sample's adds (the held jump sample at pt if `held`, the sample at t if `now`)
    touched only the window's newest bucket, with the width unchanged: what the velocity
    detectors' kept older-bucket results (`theil_sen_window`, the runs' fits) require."""
    return w == w_was and (not held or np.int64(np.floor(pt / w)) == last_id[i]) and (
        not now or np.int64(np.floor(t / w)) == last_id[i])


@numba.njit(cache=True, nogil=True, inline="always")
def theil_sen_window(i, tm, xm, k, pairs, newest_only, q, n_newest, ts_old, ts_n, ts_q):
    """`theil_sen(tm, xm, k, pairs)` of channel i's window, the same value to the last bit,
    cheaper while only the newest bucket changes. At one sample a second and 10-minute buckets
    a sample moves the newest bucket's mean and nothing else, yet recomputing and selecting
    all k(k-1)/2 slopes costs about 1 us at 12 buckets, most of it in the selection's branches.
    So once a bucket holds two samples the slopes among the older buckets are kept sorted
    (`ts_old`, for newest bucket `ts_q`); a later sample that lands in that same newest bucket
    (`newest_only`: no other bucket touched, the width unchanged) needs only the k - 1 slopes
    to the newest bucket, sorted, and the median of the two sorted sets (`kth_of_two`).
    `q` is the newest bucket's id and `n_newest` its sample count."""
    if newest_only and k >= 2 and ts_q[i] == q and ts_n[i] == (k - 1) * (k - 2) // 2:
        b = k - 1
        for a in range(b):
            pairs[a] = (xm[b] - xm[a]) / (tm[b] - tm[a])
        _sort_prefix(pairs, b)
        old = ts_old[i]
        na = ts_n[i]
        m = na + b
        h = m // 2
        upper = kth_of_two(old, na, pairs, b, h)
        if m % 2:
            return upper
        return 0.5 * (kth_of_two(old, na, pairs, b, h - 1) + upper)
    slope = theil_sen(tm, xm, k, pairs)
    if newest_only and n_newest >= 2 and k >= 2:
        m = 0
        for a in range(k - 1):
            for c in range(a + 1, k - 1):
                ts_old[i, m] = (xm[c] - xm[a]) / (tm[c] - tm[a])
                m += 1
        _sort_prefix(ts_old[i], m)
        ts_n[i] = m
        ts_q[i] = q
    else:
        ts_q[i] = NO_BUCKET
    return slope
