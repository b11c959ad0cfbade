"""Settings of the inference API, read once from the environment (documented in docs/configuration.md)."""

from pydantic import Field
from pydantic_settings import BaseSettings


class ServingSettings(BaseSettings):
    mlflow_tracking_uri: str = "http://127.0.0.1:5000"
    model_name: str = "realtor-price"
    model_alias: str = "champion"
    # How often the registry is asked whether the alias moved; also the retry delay at start-up.
    model_poll_seconds: float = Field(30.0, gt=0)
    max_batch_size: int = Field(1_000, ge=1)
    # Node 1's MySQL; an empty host turns the inference log off (a local run without MySQL).
    inference_log_host: str = ""
    inference_log_port: int = 3306
    inference_log_database: str = "InferenceLog"
    inference_log_user: str = "inference_logger"
    inference_log_password: str = ""
    # Rows wait here for the writer thread; when it is full, new rows are dropped and counted.
    inference_log_queue_size: int = Field(10_000, ge=1)
    inference_log_batch_rows: int = Field(500, ge=1)
    inference_log_flush_seconds: float = Field(1.0, gt=0)
    # Protects POST /admin/reload; empty disables the endpoint (403).
    admin_api_key: str = ""
