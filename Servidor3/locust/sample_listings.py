"""Writes listings.json, the listings Locust sends to the inference API.

The rows are cut by the data API's own code (same generator, same slice shape: complete rows,
capped prices) from several groups, so the load looks like the listings the model was trained
on; only `price` is dropped, as the API refuses it. The Locust image reads the JSON file and
never imports this module. Run from the repository root:
`PYTHONPATH=. python Servidor3/locust/sample_listings.py`.
"""

import argparse
import json
from pathlib import Path

from data_api.settings import DataApiSettings
from data_api.sources import SliceBuilder, batch_records, open_source

LISTINGS_FILE = Path(__file__).with_name("listings.json")


def sample_listings(groups: int, rows_per_group: int, day: str) -> list[dict]:
    settings = DataApiSettings(groups=groups, batches=1, batch_rows=rows_per_group)
    slices = SliceBuilder(open_source(settings), settings)
    rows = [
        row
        for group in range(1, groups + 1)
        for batch in slices.batches(group, day)
        for row in batch_records(batch)
    ]
    return [{column: value for column, value in row.items() if column != "price"} for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=10, help="data API groups (a state each) to draw from")
    parser.add_argument("--rows-per-group", type=int, default=50, help="listings drawn from each group")
    parser.add_argument("--day", default="Wednesday", help="the data API's day parameter")
    parser.add_argument("--output", type=Path, default=LISTINGS_FILE, help="where to write the JSON")
    args = parser.parse_args()
    listings = sample_listings(args.groups, args.rows_per_group, args.day)
    # One listing a line: readable diffs when the data API's generator changes.
    args.output.write_text("[\n" + ",\n".join(json.dumps(row) for row in listings) + "\n]\n")
    print(f"event=listings_written rows={len(listings)} path={args.output}")


if __name__ == "__main__":
    main()
