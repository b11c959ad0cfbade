"""Creates the MLflow artefact bucket if it is missing; the Kubernetes bucket Job runs this.

Idempotent: an existing bucket owned by us is success. Retries while the S3 endpoint starts.
Environment: MLFLOW_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ARTIFACT_BUCKET.
"""

import os
import sys
import time

import boto3
from botocore.exceptions import ClientError, EndpointConnectionError

ATTEMPTS = 30
RETRY_SECONDS = 2


def create_bucket(bucket: str, endpoint_url: str) -> None:
    s3 = boto3.client("s3", endpoint_url=endpoint_url)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            s3.create_bucket(Bucket=bucket)
            print(f"bucket-job: created bucket={bucket}")
            return
        except ClientError as error:
            if error.response["Error"]["Code"] in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                print(f"bucket-job: bucket={bucket} already exists")
                return
            raise
        except EndpointConnectionError:
            print(f"bucket-job: endpoint={endpoint_url} not reachable, attempt {attempt}/{ATTEMPTS}")
            time.sleep(RETRY_SECONDS)
    sys.exit(f"bucket-job: gave up, endpoint={endpoint_url} never answered")


if __name__ == "__main__":
    create_bucket(os.environ.get("ARTIFACT_BUCKET", "mlflow-artifacts"), os.environ["MLFLOW_S3_ENDPOINT_URL"])
