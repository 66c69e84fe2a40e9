"""feedback-api: a headless customer-feedback service."""

__version__ = "0.1.0"
