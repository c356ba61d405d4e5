"""The tables `python -m benchmarks.real_data` prints: one per set, then a summary."""

from __future__ import annotations

from collections import defaultdict

from benchmarks.nab import NAB_PROFILES

NAMES = {"minewatch": "MineWatch", "river_hst": "river HST", "ewma_z": "EWMA z"}


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    sign, s = ("-" if seconds < 0 else "+"), abs(seconds)
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if s >= size:
            return f"{sign}{s / size:.1f} {unit}"
    return f"{sign}{s:.0f} s"


def _found(events: list[dict]) -> str:
    if len(events) == 1:
        e = events[0]
        return f"yes {_dur(e['delay_s'])}" if e["found"] else "no"
    found = [e for e in events if e["found"]]
    delays = sorted(e["delay_s"] for e in found)
    mid = _dur(delays[len(delays) // 2]) if delays else "-"
    return f"{len(found)}/{len(events)} med {mid}"


def print_set(result: dict) -> None:
    methods = list(result["methods"])
    width = 19
    print(f"\n== {result['set']}: {result['title']} ({result['points']} points, "
          f"{result['point_months']} point-months; times in {result['zone']}) ==")
    print(f"{'event':<28}{'points':<22}" + "".join(f"{NAMES[m]:>{width}}" for m in methods))
    by_event: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for m in methods:
        for e in result["methods"][m]["events"]:
            by_event[e["event"]][m].append(e)
    for name, per in by_event.items():
        pts = sorted({p for e in next(iter(per.values())) for p in e["points"]})
        label = ",".join(pts) if len(pts) <= 3 else f"{len(pts)} points"
        print(f"{name:<28}{label[:21]:<22}" + "".join(f"{_found(per[m]):>{width}}"
                                                     for m in methods))
        opened = [max(e["open_after_days"] for e in per[m]) for m in methods]
        later = [sum(e["raises_90d_after"] for e in per[m]) for m in methods]
        if any(opened) or any(later):
            print(f"{'  after: open d / raises 90 d':<50}"
                  + "".join(f"{f'{o:.0f} / {r}':>{width}}" for o, r in zip(opened, later,
                                                                            strict=True)))
    print(f"{'point':<28}{'quantity':<14}{'months':>8}"
          + "".join(f"{NAMES[m] + ' FA/mo':>{width}}" for m in methods)
          + f"{'MW faults/mo':>{width}}")
    rows = _point_rows(result, methods)
    for point, (quantity, months, fa, ff) in rows.items():
        print(f"{point[:27]:<28}{quantity[:13]:<14}{_num(months):>8}"
              + "".join(f"{_rate(n, months):>{width}}" for n in fa)
              + f"{_rate(ff, months):>{width}}")
    nabs = {m: result["methods"][m]["summary"].get("nab") for m in methods}
    if any(nabs.values()):
        first = next(v for v in nabs.values() if v)
        print(f"NAB ({first['labels']} labels, window {_dur(first['window_s'])[1:]}), "
              "standard / low-FP / low-FN:")
        for how in ("decision", "swept"):
            print(f"  {'at its alarms' if how == 'decision' else 'threshold swept':<40}"
                  + "".join(f"{_nab(nabs[m], how):>{width + 8}}" for m in methods))
    secs = result.get("seconds", {})
    if secs:
        print("seconds: " + ", ".join(f"{NAMES[m]} {s}" for m, s in secs.items()))


def _point_rows(result: dict, methods: list[str]) -> dict:
    """Per point (per run group for SKAB's 272 points): quantity, months, false alerts per
    method, false faults of MineWatch."""
    rows: dict = {}
    mw = result["methods"].get("minewatch", {}).get("points", {})
    for key in next(iter(result["methods"].values()))["points"]:
        group = key.split("/")[0] if result["set"] == "skab" else key
        q = result["methods"][methods[0]]["points"][key]["quantity"]
        months = result["methods"][methods[0]]["points"][key]["months"]
        fa = [result["methods"][m]["points"][key]["false_alerts"] for m in methods]
        ff = mw.get(key, {}).get("false_faults", 0)
        if group in rows:
            _, mo, fa0, ff0 = rows[group]
            rows[group] = (q, mo + months, [a + b for a, b in zip(fa0, fa, strict=True)], ff0 + ff)
        else:
            rows[group] = (q, months, fa, ff)
    return rows


def _num(v: float) -> str:
    return f"{v:.1f}" if v >= 10 else f"{v:.2f}" if v >= 0.1 else f"{v:.2g}"


def _rate(n: int, months: float) -> str:
    return f"{_num(n / months)} ({n})" if months > 0 else f"- ({n})"


def _nab(nab: dict | None, how: str) -> str:
    if not nab:
        return "-"
    return " / ".join(f"{nab[how][k]:.1f}" for k in NAB_PROFILES)


def print_summary(results: list[dict]) -> None:
    methods = list(results[0]["methods"]) if results else []
    print("\n== summary: events found (median delay) | false safety alerts per point-month | "
          "MineWatch false fault episodes per point-month | NAB standard, threshold swept ==")
    head = f"{'set':<15}" + "".join(f"{NAMES[m]:>22}" for m in methods)
    print(head + "".join(f"{NAMES[m] + ' FA':>14}" for m in methods) + f"{'MW faults':>11}"
          + "".join(f"{NAMES[m] + ' NAB':>15}" for m in methods))
    for r in results:
        s = {m: r["methods"][m]["summary"] for m in methods}
        found = [f"{s[m]['found']}/{s[m]['events']} ({_dur(s[m]['median_delay_s'])})"
                 for m in methods]
        fa = [f"{s[m]['false_alerts_per_point_month']:.2f}" for m in methods]
        nab = [f"{s[m]['nab']['swept']['standard']:.1f}" if "nab" in s[m] else "-"
               for m in methods]
        ff = s.get("minewatch", {}).get("false_faults_per_point_month")
        print(f"{r['set']:<15}" + "".join(f"{v:>22}" for v in found)
              + "".join(f"{v:>14}" for v in fa) + f"{'-' if ff is None else f'{ff:.2f}':>11}"
              + "".join(f"{v:>15}" for v in nab))
