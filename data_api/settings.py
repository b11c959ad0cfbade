"""Settings of the listing data API, read once from the environment.

Every variable is documented in docs/configuration.md.
"""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class DataApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DATA_API_", extra="ignore")

    # The course server's own variable name, kept so its deployments configure us the same way.
    min_update_time: float = Field(300, ge=0, validation_alias="MIN_UPDATE_TIME")
    source: str = "synthetic"  # "synthetic", or a path to a Kaggle-format CSV or an API-shaped JSON
    groups: int = Field(10, ge=1)
    batches: int = Field(10, ge=1)
    batch_rows: int = Field(4000, ge=1)  # synthetic source only; a file's slice is cut into `batches`
    complete_rows_only: bool = True  # the real server served only rows without nulls
    price_cap: float = Field(300_000, ge=0)  # 0 serves every price
    seed: int = 42
    state_file: Path = Path(".local/data_api_state.json")
