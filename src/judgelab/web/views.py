"""Small pure helpers the pages share: a side-by-side diff and the agreement chart's geometry."""

from __future__ import annotations

import difflib
from typing import Any


def side_by_side(before: str, after: str) -> list[dict[str, Any]]:
    """Rows of (left, right, kind) where kind is same, del, ins or change, line by line."""
    a, b = before.splitlines(), after.splitlines()
    rows: list[dict[str, Any]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            rows += [{"left": a[i], "right": b[j1 + k], "kind": "same"} for k, i in enumerate(range(i1, i2))]
            continue
        left, right = a[i1:i2], b[j1:j2]
        for k in range(max(len(left), len(right))):
            rows.append({"left": left[k] if k < len(left) else None, "right": right[k] if k < len(right) else None,
                         "kind": {"delete": "del", "insert": "ins"}.get(op, "change")})
    return rows


def kappa_chart(by_version: list[dict[str, Any]], width: int = 560, height: int = 200) -> dict[str, Any]:
    """Points (x, y) and interval whiskers for kappa per version, on a -1..1 scale (0 = chance)."""
    pad_l, pad_r, pad_t, pad_b = 44, 16, 14, 30
    inner_w, inner_h = width - pad_l - pad_r, height - pad_t - pad_b
    shown = [v for v in by_version if v.get("agreement") and v["agreement"]["kappa"]["value"] is not None]
    several_models = len({v.get("model") for v in shown}) > 1

    def y(k: float) -> float:
        return round(pad_t + (1 - (k + 1) / 2) * inner_h, 1)

    points = []
    for i, v in enumerate(shown):
        x = round(pad_l + (inner_w * (i + 0.5) / max(1, len(shown))), 1)
        kappa = v["agreement"]["kappa"]
        lo = kappa["low"] if kappa["low"] is not None else kappa["value"]
        hi = kappa["high"] if kappa["high"] is not None else kappa["value"]
        label = f"v{v['version']}" + (f" {str(v.get('model') or '').split('/')[-1]}" if several_models else "")
        points.append({"x": x, "y": y(kappa["value"]), "y_low": y(lo), "y_high": y(hi), "version": v["version"], "label": label,
                       "kappa": kappa, "n": v["agreement"]["n"], "base_rate": v["agreement"].get("base_rate")})
    ticks = [{"label": f"{k:+.1f}" if k else "0", "y": y(k)} for k in (-1.0, -0.5, 0.0, 0.5, 1.0)]
    return {"width": width, "height": height, "left": pad_l, "right": width - pad_r, "points": points, "ticks": ticks,
            "path": " ".join(f"{'M' if i == 0 else 'L'}{p['x']},{p['y']}" for i, p in enumerate(points)),
            "bottom": height - pad_b}


COLOURS = ("#2453c7", "#c7522a", "#2a8c55", "#8a4fc7", "#5d6577")


def drift_chart(weeks: list[dict[str, Any]], width: int = 560, height: int = 200) -> dict[str, Any]:
    """Weekly kappa per (version, model) as series of points with interval whiskers, -1..1 scale."""
    pad_l, pad_r, pad_t, pad_b = 44, 16, 14, 30
    inner_w, inner_h = width - pad_l - pad_r, height - pad_t - pad_b
    shown = [w for w in weeks if w["kappa"] and w["kappa"]["value"] is not None]
    order = sorted({w["week"] for w in shown})
    slot = {week: i for i, week in enumerate(order)}

    def y(k: float) -> float:
        return round(pad_t + (1 - (k + 1) / 2) * inner_h, 1)

    def x(week: str) -> float:
        return round(pad_l + inner_w * (slot[week] + 0.5) / max(1, len(order)), 1)

    series: dict[tuple[int, str | None], list[dict[str, Any]]] = {}
    for w in shown:
        k = w["kappa"]
        lo = k["low"] if k["low"] is not None else k["value"]
        hi = k["high"] if k["high"] is not None else k["value"]
        series.setdefault((w["version"], w["model"]), []).append(
            {"x": x(w["week"]), "y": y(k["value"]), "y_low": y(lo), "y_high": y(hi), "week": w["week"], "n": w["n"],
             "kappa": k})
    lines = []
    for i, ((version, model), points) in enumerate(sorted(series.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))):
        lines.append({"label": f"v{version}" + (f" {str(model).split('/')[-1]}" if model else ""), "points": points,
                      "colour": COLOURS[i % len(COLOURS)],
                      "path": " ".join(f"{'M' if j == 0 else 'L'}{p['x']},{p['y']}" for j, p in enumerate(points))})
    ticks = [{"label": f"{k:+.1f}" if k else "0", "y": y(k)} for k in (-1.0, -0.5, 0.0, 0.5, 1.0)]
    return {"width": width, "height": height, "left": pad_l, "right": width - pad_r, "bottom": height - pad_b,
            "ticks": ticks, "lines": lines, "weeks": [{"label": week[5:], "x": x(week)} for week in order]}


def balance_bars(balance: dict[str, Any], width: int = 560) -> list[dict[str, Any]]:
    """One horizontal bar per label value, its width the value's share of the labels."""
    total = max(1, balance["total"])
    colours = {"pass": "#2a8c55", "fail": "#c7522a", "N/A": "#8a93a6"}
    return [{"label": label, "count": n, "share": n / total, "width": round((width - 140) * n / total, 1),
             "colour": colours.get(label, "#2453c7")} for label, n in balance["by_value"].items()]
