"""One settings object, read from ``FHIR_GATEWAY_*`` environment variables and validated at start."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FHIR_GATEWAY_", extra="ignore")

    database_url: str = Field(
        "sqlite:///./fhir-gateway.db",
        description="SQLAlchemy URL; PostgreSQL as postgresql+psycopg://user@host/db",
    )
    base_url: str | None = Field(
        None, description="Public base URL used in Location headers and Bundle links"
    )
    max_body_bytes: int = Field(10 * 1024 * 1024, description="Largest request body accepted")
    max_json_depth: int = Field(64, description="Deepest JSON nesting accepted")
    default_page_size: int = Field(20, description="_count when a search gives none")
    max_page_size: int = Field(1000, description="Largest _count honoured")
    db_pool_size: int = Field(10, description="Connections per process (PostgreSQL)")
    log_level: str = Field("INFO")


@lru_cache
def get_settings() -> Settings:
    return Settings()
