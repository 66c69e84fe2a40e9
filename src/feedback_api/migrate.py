"""Run Alembic migrations from code (the CLI, the embedded server, the tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

# A source checkout has alembic.ini two levels above this file; an installed package (the
# Docker image) finds it in the working directory, where the image puts it.
CANDIDATES = (Path(__file__).resolve().parents[2] / "alembic.ini", Path.cwd() / "alembic.ini")


def alembic_config(url: str) -> Config:
    ini = next((p for p in CANDIDATES if p.exists()), None)
    if ini is None:
        raise RuntimeError("alembic.ini not found: run from the project's folder")
    config = Config(str(ini))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)
