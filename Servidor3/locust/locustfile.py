"""Placeholder so the manifests render; replaced by the load-test work."""

from locust import HttpUser, task


class InferenceUser(HttpUser):
    @task
    def health(self) -> None:
        self.client.get("/health")
