from tests.fixtures.webhooks import app_settings, sessions, third_live  # noqa: F401  (fixtures)
