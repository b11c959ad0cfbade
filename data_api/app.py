"""HTTP API compatible with the course's data server (contract in docs/architecture.md).

Run: `uvicorn --factory data_api.app:create_app`. The slice of each (group, day) is built on
first use and cached; the batch each one is on lives in DATA_API_STATE_FILE.
"""

import enum
import logging
from typing import Annotated

from fastapi import FastAPI, HTTPException, Query

from data_api.progress import ExhaustedError, ProgressStore
from data_api.settings import WEEKDAYS, DataApiSettings
from data_api.sources import SliceBuilder, batch_records, open_source

# The exact words of the real server; the pipeline recognises end-of-data by them.
EXHAUSTED_DETAIL = "Ya se recolectó toda la información mínima necesaria"

Weekday = enum.StrEnum("Weekday", {day: day for day in WEEKDAYS})

log = logging.getLogger("data_api")


def create_app(settings: DataApiSettings | None = None) -> FastAPI:
    settings = settings or DataApiSettings()
    slices = SliceBuilder(open_source(settings), settings)
    progress = ProgressStore(settings.state_file)

    app = FastAPI(
        title="Realtor listing data API",
        description=(
            "Serves batches of US house listings per (group_number, day), like the course's data "
            f"server: a batch advances at most every MIN_UPDATE_TIME={settings.min_update_time:g} s; "
            f"after the last one the answer is HTTP 400 `{EXHAUSTED_DETAIL}`."
        ),
    )
    GroupNumber = Annotated[
        int, Query(ge=1, le=settings.groups, description=f"Group, 1 to {settings.groups}", examples=[5])
    ]
    Day = Annotated[Weekday, Query(description="Day of the week, capitalised", examples=["Wednesday"])]

    @app.get("/data")
    def read_data(group_number: GroupNumber, day: Day) -> dict:
        """The current batch of this group and day: the same batch again until it is old enough."""
        batches = slices.batches(group_number, day.value)
        try:
            state = progress.next_batch(f"{group_number}:{day.value}", len(batches), settings.min_update_time)
        except ExhaustedError:
            log.info("event=exhausted group=%s day=%s", group_number, day.value)
            raise HTTPException(status_code=400, detail=EXHAUSTED_DETAIL) from None
        batch = batches[state.batch_number - 1]
        log.info(
            "event=batch group=%s day=%s generation=%s batch=%s rows=%s",
            group_number,
            day.value,
            state.generation,
            state.batch_number,
            len(batch),
        )
        return {
            "group_number": group_number,
            "day": day.value,
            "batch_number": state.batch_number,
            "data": batch_records(batch),
        }

    @app.get("/restart_data_generation")
    def restart_data_generation(group_number: GroupNumber, day: Day) -> dict:
        """Start this group and day over from its first batch."""
        state = progress.restart(f"{group_number}:{day.value}")
        log.info("event=restart group=%s day=%s generation=%s", group_number, day.value, state.generation)
        return {"ok": True, "group_number": group_number, "day": day.value, "generation": state.generation}

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    return app
