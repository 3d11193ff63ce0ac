"""One settings object, read from ``FHIR_GATEWAY_*`` environment variables and validated at start."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

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

    # -- care plans (fhir_gateway.careplans) ------------------------------------------------------
    careplans: Path | None = Field(
        None, description="A directory of your own PlanDefinition/ActivityDefinition JSON (FHIR_GATEWAY_CAREPLANS)"
    )
    careplan_mode: Literal["auto", "review"] = Field(
        "review", description="auto: referrals go out at once; review: a case manager approves the plan first"
    )
    careplan_seed: bool = Field(
        True, description="Load the shipped templates and partner directory (and FHIR_GATEWAY_CAREPLANS) at start"
    )
    partners: Path | None = Field(None, description="A directory of your own partner directory resources")
    case_manager: str = Field(
        "Organization/care-coordination", description="Reference of the case manager (CareTeam, plan author)"
    )
    referral_requester: str = Field(
        "Organization/care-coordination", description="Task.requester / ServiceRequest.requester of referrals"
    )
    facility_zone: str = Field("UTC", description="IANA zone of a discharging facility not in facility_zones")
    facility_zones: dict[str, str] = Field(
        default_factory=dict,
        description="IANA zone by sending facility (MSH-4.1, or the sender Organization's identifier/name)",
    )
    part2_senders: list[str] = Field(
        default_factory=lambda: ["*"],
        description="Senders whose substance-use diagnoses are 42 CFR Part 2 records ('*': all)",
    )

    # --- intake (HL7 v2 over MLLP/HTTP, FHIR notifications) ---------------------------------
    mllp_enabled: bool = Field(False, description="Run the MLLP listener inside `serve`")
    mllp_host: str = Field("127.0.0.1", description="Interface the MLLP listener binds")
    mllp_port: int = Field(2575, description="MLLP TCP port")
    mllp_idle_timeout: float = Field(300.0, description="Seconds a connection may stay silent")
    mllp_frame_timeout: float = Field(
        60.0, description="Seconds a begun MLLP frame may take to end (defeats trickling senders)"
    )
    mllp_max_frame_bytes: int = Field(10 * 1024 * 1024, description="Largest MLLP frame accepted")
    mllp_tls_cert: str | None = Field(None, description="PEM certificate (chain): MLLP over TLS")
    mllp_tls_key: str | None = Field(None, description="PEM private key of mllp_tls_cert")
    mllp_tls_client_ca: str | None = Field(
        None, description="PEM CA bundle: when set, MLLP clients must present a certificate it signed"
    )
    sender_allowlist: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Registered senders: 'APP|FACILITY' or 'FACILITY' (MSH-3/MSH-4 first components), or a "
            "FHIR MessageHeader.source.endpoint → the hospital it belongs to. Empty: any sender; "
            "otherwise an unknown sender is refused (AR)."
        ),
    )
    sender_zones: dict[str, str] = Field(
        default_factory=dict,
        description="Per sender ('APP|FACILITY' or 'FACILITY') IANA zone for times sent without an offset",
    )
    default_sender_zone: str = Field("UTC", description="Zone for senders without their own")
    hl7_mappings_dir: str | None = Field(None, description="User ConceptMaps overriding the HL7 v2 code maps")


@lru_cache
def get_settings() -> Settings:
    return Settings()
