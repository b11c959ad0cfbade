"""Altair charts of the pages: a SHAP waterfall of one prediction and the test metric by version."""

import math

import altair as alt
import pandas as pd

FEATURES_SHOWN = 8  # the rest are summed into one step
UP, DOWN, TOTAL = "#2e7d32", "#c62828", "#546e7a"


def shap_waterfall(explanation: dict) -> alt.Chart:
    """From the model's typical price to this listing's, one bar per feature's push, in dollars.

    SHAP values add up in log(1 + price) (what the model learns), so each bar spans the price before
    and after adding that feature's value: the bars chain exactly to the predicted price.
    """
    contributions = explanation["contributions"]  # largest push first
    shown = [(f"{item['feature']} = {item['value']:g}", item["shap_value"]) for item in contributions]
    if len(shown) > FEATURES_SHOWN:
        rest = shown[FEATURES_SHOWN - 1 :]
        shown = [*shown[: FEATURES_SHOWN - 1], (f"{len(rest)} other features", sum(v for _, v in rest))]
    level = explanation["base_value"]
    steps = [{"step": "typical price", "start": 0.0, "end": math.expm1(level), "kind": "total"}]
    for label, push in shown:
        steps.append(
            {
                "step": label,
                "start": math.expm1(level),
                "end": math.expm1(level + push),
                "kind": "raises" if push >= 0 else "lowers",
            }
        )
        level += push
    steps.append({"step": "this listing", "start": 0.0, "end": math.expm1(level), "kind": "total"})
    frame = pd.DataFrame(steps)
    frame["change"] = [
        f"${end:,.0f}" if kind == "total" else f"{end - start:+,.0f} $"
        for start, end, kind in zip(frame["start"], frame["end"], frame["kind"], strict=True)
    ]
    frame["label_at"] = frame[["start", "end"]].max(axis=1)  # right of the bar, whichever way it goes
    order = list(frame["step"])
    # Every step labelled: Vega-Lite would otherwise hide labels it thinks crowd each other.
    rows = alt.Chart(frame).encode(
        y=alt.Y("step:N", sort=order, title=None, axis=alt.Axis(labelOverlap=False, labelLimit=240))
    )
    bars = rows.mark_bar().encode(
        x=alt.X("start:Q", title="price (US$)", axis=alt.Axis(format="$,.0f")),
        x2="end:Q",
        color=alt.Color(
            "kind:N",
            scale=alt.Scale(domain=["raises", "lowers", "total"], range=[UP, DOWN, TOTAL]),
            legend=alt.Legend(title=None, orient="bottom"),
        ),
        tooltip=["step", "change"],
    )
    labels = rows.mark_text(align="left", dx=4, color="#212121").encode(x="label_at:Q", text="change")
    return (bars + labels).properties(height=alt.Step(28))


def metric_by_version(frame: pd.DataFrame, metric_title: str) -> alt.Chart:
    """The test metric of each version, promoted versions marked, the champion ringed."""
    base = alt.Chart(frame).encode(
        x=alt.X("version:O", title="model version", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("test MAE:Q", title=metric_title, scale=alt.Scale(zero=False)),
    )
    points = base.mark_point(size=120, filled=True).encode(
        color=alt.Color(
            "verdict:N",
            scale=alt.Scale(domain=["promoted", "rejected", "not judged"], range=[UP, DOWN, TOTAL]),
            legend=alt.Legend(title="promotion"),
        ),
        tooltip=["version", "test MAE", "verdict", "champion"],
    )
    champion = base.transform_filter(alt.datum.champion).mark_point(size=420, shape="circle", color="#f9a825")
    return (base.mark_line(color=TOTAL) + points + champion).properties(height=300)
