"""Settings of node 1's pipeline, read once from the environment (documented in docs/configuration.md).

The MLflow tracking server is not here: MLflow reads MLFLOW_TRACKING_URI itself.
"""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PipelineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PIPELINE_", extra="ignore")

    raw_data_url: str  # SQLAlchemy URL of RawData, e.g. mysql+mysqldb://user:password@host:3306/RawData
    clean_data_url: str  # SQLAlchemy URL of CleanData
    data_api_url: str = "http://127.0.0.1:8080"
    group_number: int = Field(5, ge=1)
    day: str = "Wednesday"
    model_name: str = "realtor-price"
    experiment: str = "realtor-price"
    # Three real ~4,000-row batches; the seeds' "10,000 new rows in one call" never fired.
    new_rows_threshold: int = Field(10_000, ge=1)
    # Population stability index above which a feature's distribution counts as shifted.
    drift_psi_threshold: float = Field(0.2, gt=0)
    drift_min_rows: int = Field(500, ge=1)  # fewer new rows than this give too noisy a PSI
    # A candidate must beat the champion's test MAE by this fraction to replace it.
    promotion_margin: float = Field(0.01, ge=0, lt=1)
