"""Makes the real-services harness (tests/harness) available to every test folder."""

pytest_plugins = ["tests.harness.services", "tests.harness.serving"]
