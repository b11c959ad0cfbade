"""Command line of node 1's pipeline: its steps by hand, and an offline comparison on a file.

`python -m realtor_pipeline train --data FILE [--out predictions.csv]` splits the file's priced
rows, cleans the training rows, searches for the best model on the validation rows, scores it
and the two seed recipes on the test rows, prints one comparison table and writes the test rows
with their predicted price. It never talks to MySQL or MLflow; run it from the repository root,
since it reads files with the data API's reader (`data_api.sources`).

The other commands run the pipeline's steps (`steps.py`) against the configured services, with
the settings of docs/configuration.md from the environment: `collect`, `decide`, `split`,
`train-and-promote`, `run-once` (one DAG run's worth), `reset`, `rollback` and `history`.
"""

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from realtor_pipeline import steps
from realtor_pipeline.evaluate import (
    TARGET,
    Baseline,
    comparison_table,
    fit_recipe_a,
    fit_recipe_b,
    format_table,
    regression_metrics,
)
from realtor_pipeline.registry import promotion_history, rollback
from realtor_pipeline.settings import PipelineSettings
from realtor_pipeline.split import clean_training_rows, priced_rows, split_of
from realtor_pipeline.tables import IngestOutcome
from realtor_pipeline.train import TrainedModel, train_best

PREDICTION_COLUMN = "predicted_price"


@dataclass(frozen=True)
class Comparison:
    """Our model and the seed recipes, trained on the same rows and scored on the same test rows."""

    train: pd.DataFrame  # cleaned
    validation: pd.DataFrame
    test: pd.DataFrame
    trained: TrainedModel
    baselines: list[Baseline]
    predictions: np.ndarray  # our model's, one per test row
    table: pd.DataFrame  # see evaluate.comparison_table; our model first
    search_seconds: float


def compare_models(listings: pd.DataFrame) -> Comparison:
    """split → clean → train → evaluate on test, for our model and both seed recipes."""
    priced = priced_rows(listings)
    split = split_of(priced)
    train = clean_training_rows(priced[split == "train"])
    validation, test = priced[split == "validation"], priced[split == "test"]
    if test.empty:
        raise ValueError(f"no test rows among {len(priced)} priced listings; the file is too small")
    started = time.perf_counter()
    trained = train_best(train, validation)
    search_seconds = time.perf_counter() - started
    baselines = [fit_recipe_a(train), fit_recipe_b(train)]
    predictions = trained.pipeline.predict(test)
    ours = f"ours: {trained.name}"
    metrics = {ours: regression_metrics(test[TARGET], predictions)}
    metrics |= {
        baseline.name: regression_metrics(test[TARGET], baseline.predict(test)) for baseline in baselines
    }
    seconds = {ours: trained.train_seconds} | {
        baseline.name: baseline.train_seconds for baseline in baselines
    }
    table = comparison_table(metrics, seconds)
    return Comparison(train, validation, test, trained, baselines, predictions, table, search_seconds)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m realtor_pipeline", description="Node 1's training pipeline, run by hand."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser(
        "train",
        help="train on a listings file and compare with the seed recipes",
        description="Split the file's priced rows 60/20/20 by listing, clean the training rows, pick the "
        "best model on the validation rows, and print its test scores next to the seed recipes'.",
    )
    train.add_argument(
        "--data",
        type=Path,
        required=True,
        help='listings: a Kaggle-format CSV with the 12 columns, or JSON as one data API response ({"data": '
        "[...]}) or a list of them",
    )
    train.add_argument(
        "--out",
        type=Path,
        default=Path("predictions.csv"),
        help=f"CSV to write the test rows to, with a {PREDICTION_COLUMN} column (default: %(default)s)",
    )
    for name, help_text in (
        ("collect", "fetch the current batch from the data API and store it"),
        ("decide", "apply the decision rules and log the decision to MLflow"),
        ("split", "place new rows in their split and rebuild the clean tables"),
        ("train-and-promote", "train, register, explain, and promote only if better than the champion"),
        ("run-once", "collect (resetting when exhausted), decide, and if so split and train-and-promote"),
        ("reset", "restart the data API's collection under a new generation; history is kept"),
        ("history", "print the promotion history of the model"),
    ):
        command = commands.add_parser(name, help=help_text, description=help_text)
        if name in ("decide", "train-and-promote", "run-once"):
            command.add_argument("--run-id", required=True, help="label of this run, tagged on MLflow runs")
    rollback = commands.add_parser("rollback", help="serve the @previous model version again")
    rollback.add_argument("--reason", required=True, help="why, recorded in the promotion history")
    return parser


def run_once(settings: PipelineSettings, run_id: str) -> None:
    """What one DAG run does, in one process."""
    report = steps.extract(settings)
    print(f"collect: {report}")
    if report.outcome == IngestOutcome.EXHAUSTED:
        print(f"reset: new generation {steps.reset(settings)}")
        return
    decision = steps.decide(settings, run_id)
    print(f"decide: train={decision.train} reason={decision.reason}")
    if decision.train:
        print(f"split: {steps.split_and_clean(settings)}")
        print(f"train-and-promote: {steps.train_and_promote(settings, run_id)}")


def run_step(args: argparse.Namespace) -> None:
    settings = PipelineSettings()
    actions = {
        "collect": lambda: steps.extract(settings),
        "decide": lambda: steps.decide(settings, args.run_id),
        "split": lambda: steps.split_and_clean(settings),
        "train-and-promote": lambda: steps.train_and_promote(settings, args.run_id),
        "run-once": lambda: run_once(settings, args.run_id),
        "reset": lambda: steps.reset(settings),
        "rollback": lambda: rollback(settings.model_name, args.reason),
        "history": lambda: promotion_history(settings.model_name).to_string(index=False),
    }
    result = actions[args.command]()
    if result is not None:
        print(result)


def run_train(data: Path, out: Path) -> None:
    # Imported here: only this offline command reads files, and it runs from the repository root
    # where the data API's reader lives; node 1's image has no data_api.
    from data_api.sources import read_listing_file

    listings = read_listing_file(data)
    comparison = compare_models(listings)
    trained = comparison.trained
    print(
        f"listings={len(listings)} train={len(comparison.train)} validation={len(comparison.validation)} "
        f"test={len(comparison.test)} (rows without a positive price dropped, training rows cleaned)"
    )
    print(
        f"chosen={trained.name} params={trained.params} "
        f"validation_mae={trained.validation_metrics['mae']:,.0f} "
        f"configurations={len(trained.search)} search_seconds={comparison.search_seconds:.1f}"
    )
    print(format_table(comparison.table))
    out.parent.mkdir(parents=True, exist_ok=True)
    comparison.test.assign(**{PREDICTION_COLUMN: comparison.predictions}).to_csv(out, index=False)
    print(f"predictions={out} rows={len(comparison.test)}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            run_train(args.data, args.out)
        else:
            run_step(args)
    except (OSError, ValueError, LookupError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
