"""Whether to train now, and why: three rules, checked in order.

1. **first model** — there is no `@champion` yet.
2. **new rows** — valid rows stored since the last training run reach `new_rows_threshold`.
3. **drift** — the new rows' distribution of price or a key feature has moved away from the rows
   the last model trained on: the population stability index (PSI, over ten quantile bins of the
   reference rows) of any of DRIFT_FEATURES is above `drift_psi_threshold` (0.2 is the usual
   "significant shift" line). Checked only with at least `drift_min_rows` new rows, since PSI on
   a handful of rows is noise.

The caller logs every decision, train or not, as an MLflow run (see `steps.decide`).
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

DRIFT_FEATURES = ("price", "house_size", "bed", "bath", "acre_lot")
PSI_BINS = 10
PSI_FLOOR = 1e-4  # an empty bin would make the log infinite


@dataclass(frozen=True)
class Decision:
    train: bool
    rule: str  # first_model | new_rows | drift | none
    reason: str
    numbers: dict[str, float] = field(default_factory=dict)


def population_stability_index(reference: pd.Series, current: pd.Series) -> float:
    """PSI of `current` against `reference`, over quantile bins of the reference (nulls ignored)."""
    reference, current = reference.dropna().to_numpy(float), current.dropna().to_numpy(float)
    if len(reference) == 0 or len(current) == 0:
        return 0.0
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, PSI_BINS + 1))[1:-1])
    expected = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1)
    actual = np.bincount(np.searchsorted(edges, current, side="right"), minlength=len(edges) + 1)
    expected = np.maximum(expected / expected.sum(), PSI_FLOOR)
    actual = np.maximum(actual / actual.sum(), PSI_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def decide_to_train(
    has_champion: bool,
    new_rows: pd.DataFrame,
    reference_rows: pd.DataFrame,
    new_rows_threshold: int,
    drift_psi_threshold: float,
    drift_min_rows: int,
) -> Decision:
    """`new_rows`: valid rows stored since the last training run; `reference_rows`: the rows it used."""
    numbers: dict[str, float] = {"new_rows": len(new_rows), "new_rows_threshold": new_rows_threshold}
    if not has_champion:
        return Decision(True, "first_model", "no champion model yet", numbers)
    if len(new_rows) >= new_rows_threshold:
        reason = f"{len(new_rows)} new rows >= threshold {new_rows_threshold}"
        return Decision(True, "new_rows", reason, numbers)
    if len(new_rows) >= drift_min_rows and len(reference_rows):
        psi = {
            f"psi_{name}": population_stability_index(reference_rows[name], new_rows[name])
            for name in DRIFT_FEATURES
        }
        numbers |= psi | {"drift_psi_threshold": drift_psi_threshold}
        worst = max(psi, key=psi.get)
        if psi[worst] > drift_psi_threshold:
            reason = f"drift: {worst}={psi[worst]:.3f} > {drift_psi_threshold} on {len(new_rows)} new rows"
            return Decision(True, "drift", reason, numbers)
        drift_note = f"max {worst}={psi[worst]:.3f} <= {drift_psi_threshold}"
    else:
        drift_note = f"drift not checked below {drift_min_rows} new rows"
    reason = f"{len(new_rows)} new rows < threshold {new_rows_threshold}; {drift_note}"
    return Decision(False, "none", reason, numbers)
