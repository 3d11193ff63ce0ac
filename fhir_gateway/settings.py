"""One settings object, read from ``FHIR_GATEWAY_*`` environment variables and validated at start."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "Settings",
    "get_settings",
    "DEMO_SENDER_ZONES",
    "DEMO_SENDER_COUNTRIES",
    "ABDM_AUTHORITIES",
]

# The two invented hospitals of `fhir-gateway demo` (mappings/partners/README.md). They are the
# defaults of sender_zones and sender_countries, so a plain `serve` runs the demo in the right
# zone and jurisdiction; setting either variable replaces them (keep them there to keep the demo).
DEMO_SENDER_ZONES = {"DEMO-SPRINGFIELD": "America/Chicago", "DEMO-BENGALURU": "Asia/Kolkata"}
DEMO_SENDER_COUNTRIES = {"DEMO-SPRINGFIELD": "US", "DEMO-BENGALURU": "IN"}
# HL7 v2 assigning authorities (CX.4, HD) that Indian hospital systems write for ABDM identifiers:
# "abha" for an ABHA number or ABHA address (told apart by their form), "hfr" for a facility id.
ABDM_AUTHORITIES: dict[str, Literal["abha", "hfr"]] = {
    "ABHA": "abha",
    "ABHANO": "abha",
    "ABHAADDR": "abha",
    "ABHA-ADDRESS": "abha",
    "HEALTHID": "abha",
    "NDHM": "abha",
    "PHR": "abha",
    "HFR": "hfr",
    "NHFR": "hfr",
}


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
    log_level: str = Field("INFO", description="Python log level (DEBUG, INFO, WARNING, ERROR)")
    log_format: Literal["text", "json"] = Field(
        "text",
        description="Log lines as text, or as JSON lines with a correlation id and trace ids",
    )

    # --- operations (fhir_gateway.observability) ------------------------------------------------
    gc_freeze_at_start: bool = Field(
        True,
        description="Once started, keep the start-up objects out of the garbage collector's "
        "full passes (gc.freeze), which otherwise walk them all every few dozen messages",
    )
    metrics_enabled: bool = Field(True, description="Serve Prometheus metrics")
    metrics_port: int | None = Field(
        None,
        description="Serve /metrics on this port without a token (none: on the API port, admins only)",
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="Interface of metrics_port and of the --health-port of `worker` and `mllp`",
    )
    worker_heartbeat_max_age: float = Field(
        120.0,
        description="Seconds since its last loop after which a worker's /health/ready says not ready",
    )

    # -- care plans (fhir_gateway.careplans) ------------------------------------------------------
    careplans: Path | None = Field(
        None,
        description="A directory of your own PlanDefinition/ActivityDefinition JSON (FHIR_GATEWAY_CAREPLANS)",
    )
    careplan_mode: Literal["auto", "review"] = Field(
        "review",
        description="auto: referrals go out at once; review: a case manager approves the plan first",
    )
    careplan_seed: bool = Field(
        True,
        description="Load the shipped templates and partner directory (and FHIR_GATEWAY_CAREPLANS) at start",
    )
    partners: Path | None = Field(
        None, description="A directory of your own partner directory resources"
    )
    assessments: Path | None = Field(
        None,
        description="A directory of your own Questionnaire JSON, stored at start with the shipped instruments (FHIR_GATEWAY_ASSESSMENTS)",
    )
    case_manager: str = Field(
        "Organization/care-coordination",
        description="Reference of the case manager (CareTeam, plan author)",
    )
    referral_requester: str = Field(
        "Organization/care-coordination",
        description="Task.requester / ServiceRequest.requester of referrals",
    )
    part2_senders: list[str] | None = Field(
        None,
        description=(
            "Senders ('APP|FACILITY', 'FACILITY' or a FHIR source endpoint) whose substance-use diagnoses "
            "are 42 CFR Part 2 records ('*': all); unset: the senders of US facilities (sender_countries, "
            "default_country)"
        ),
    )

    counselling_note_types: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "*": ["http://fhir-gateway.org/fhir/CodeSystem/document-type|sud-counselling-note"]
        },
        description=(
            "Per sender ('APP|FACILITY', 'FACILITY' or '*'): the DocumentReference types "
            "('system|code') of its SUD counselling notes, disclosed only under a consent naming them"
        ),
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
    mllp_workers: int = Field(
        2,
        ge=1,
        le=64,
        description="Threads per MLLP listener process that apply messages; more contend for "
        "the interpreter lock (more cores: more processes, `mllp --processes`)",
    )
    mllp_max_connections: int = Field(
        100, ge=1, description="MLLP connections open at once; more are closed as they come"
    )
    mllp_max_junk_bytes: int = Field(
        64 * 1024,
        ge=0,
        description="Bytes outside MLLP frames a connection may send before it is closed",
    )
    mllp_tls_cert: str | None = Field(None, description="PEM certificate (chain): MLLP over TLS")
    mllp_tls_key: str | None = Field(None, description="PEM private key of mllp_tls_cert")
    mllp_tls_client_ca: str | None = Field(
        None,
        description="PEM CA bundle: when set, MLLP clients must present a certificate it signed",
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
        default_factory=lambda: dict(DEMO_SENDER_ZONES),
        description=(
            "Per sender ('APP|FACILITY' or 'FACILITY') IANA zone for times sent without an offset and for "
            "deadlines (default: the two demo hospitals)"
        ),
    )
    default_sender_zone: str = Field("UTC", description="Zone for senders without their own")
    sender_countries: dict[str, str] = Field(
        default_factory=lambda: dict(DEMO_SENDER_COUNTRIES),
        description=(
            "Per sender ('APP|FACILITY', 'FACILITY' or a FHIR source endpoint) the facility's country "
            "(ISO 3166 alpha-2): it decides the jurisdiction's defaults (US: ICD-10-CM, 42 CFR Part 2; "
            "IN: WHO ICD-10, Mental Healthcare Act 2017); default: the two demo hospitals"
        ),
    )
    default_country: str = Field(
        "US", description="Country of senders without their own (ISO 3166 alpha-2)"
    )
    hl7_mappings_dir: str | None = Field(
        None, description="User ConceptMaps overriding the HL7 v2 code maps"
    )

    # --- India: Mental Healthcare Act 2017 and ABDM identifiers (fhir_gateway.privacy, adapters.abdm)
    mhca_senders: list[str] | None = Field(
        None,
        description=(
            "Senders ('APP|FACILITY', 'FACILITY' or a FHIR source endpoint) that are mental health "
            "establishments under India's Mental Healthcare Act 2017 ('*': all; never 42 CFR Part 2 "
            "senders); unset: the senders of Indian facilities (sender_countries, default_country)"
        ),
    )
    abha_number_system: str = Field(
        "https://healthid.ndhm.gov.in",
        description="Identifier system of ABHA numbers (14 digits), as in the ABDM FHIR IG",
    )
    abha_address_system: str = Field(
        "http://fhir-gateway.org/fhir/sid/abha-address",
        description="Identifier system of ABHA addresses (name@abdm); the ABDM FHIR IG names none",
    )
    hfr_system: str = Field(
        "https://facility.ndhm.gov.in",
        description="Identifier system of Health Facility Registry ids, as in the ABDM FHIR IG",
    )
    abdm_authorities: dict[str, Literal["abha", "hfr"]] = Field(
        default_factory=lambda: dict(ABDM_AUTHORITIES),
        description=(
            "HL7 v2 assigning authorities (CX.4 / HD namespace or universal id, any case) of Indian "
            "senders → the ABDM identifier they assign: abha (ABHA number or address, by its form) "
            "or hfr (Health Facility Registry id)"
        ),
    )

    # --- referrals and notifications (fhir_gateway.workflow, .notifications, workers.delivery) -----
    outbox_worker: bool = Field(False, description="Run the outbox delivery worker inside `serve`")
    outbox_max_age: float = Field(
        72 * 3600.0, description="Seconds a notification is retried before it is dead-lettered"
    )
    outbox_max_attempts: int | None = Field(
        None, description="Attempts before a notification is dead-lettered (none: only the age)"
    )
    outbox_backoff_base: float = Field(
        5.0, description="Seconds before the first retry; doubles each attempt (with jitter)"
    )
    outbox_backoff_max: float = Field(
        3600.0, description="Longest wait between two attempts, in seconds"
    )
    outbox_timeout: float = Field(10.0, description="Seconds a receiver has to answer one delivery")
    outbox_batch_size: int = Field(50, description="Rows a worker claims at once")
    outbox_concurrency: int = Field(8, description="Deliveries a worker makes at the same time")
    outbox_lease: float = Field(
        300.0, description="Seconds a claimed row stays with its worker before others may retry it"
    )
    outbox_poll_interval: float = Field(
        1.0, description="Seconds an idle worker waits before looking again"
    )
    partner_poll_interval: float = Field(
        300.0, description="Seconds between two polls of partners' FHIR servers (0: never)"
    )
    partner_timeout: float = Field(
        10.0, description="Seconds a partner's FHIR server has to answer"
    )

    # --- caring contacts (fhir_gateway.contacts, adapters.messaging) ----------------------------
    contacts_media: list[str] = Field(
        default_factory=lambda: ["email", "sms"],
        description="How caring contacts reach a patient, in order of preference (a medium counts "
        "when its channel is configured; the patient's Patient.telecom rank comes first)",
    )
    contacts_interval: float = Field(
        300.0, description="Seconds between two runs of the caring-contact due-sender in a worker"
    )
    contacts_batch: int = Field(
        200, description="Caring contacts one due-sender run queues at most"
    )
    contacts_smtp_host: str | None = Field(
        None, description="SMTP server for caring contacts by e-mail"
    )
    contacts_smtp_port: int = Field(587, description="SMTP port (587 with STARTTLS, 465 with TLS)")
    contacts_smtp_from: str | None = Field(
        None, description="From address of caring-contact e-mails"
    )
    contacts_smtp_starttls: bool = Field(True, description="Upgrade the SMTP connection (STARTTLS)")
    contacts_smtp_ssl: bool = Field(
        False, description="Implicit TLS from the first byte (port 465)"
    )
    contacts_smtp_username: str | None = Field(None, description="SMTP user (none: no login)")
    contacts_smtp_password: SecretStr | None = Field(None, description="SMTP password")
    contacts_smtp_timeout: float = Field(
        10.0, description="Seconds the SMTP server has for the connection and each command"
    )
    contacts_webhook_url: str | None = Field(
        None, description="A messaging provider's webhook (SMS, WhatsApp) for caring contacts"
    )
    contacts_webhook_secret: SecretStr | None = Field(
        None, description="HMAC secret that signs each webhook POST (X-FHIR-Gateway-Signature)"
    )

    # --- case-manager monitors (fhir_gateway.monitors) ------------------------------------------
    monitor_interval: float = Field(
        300.0,
        description="Seconds between two scheduled monitor runs, shared by all workers (0: workers do not run them)",
    )
    monitor_ack_hours: float = Field(
        48.0,
        description="Hours a requested referral may wait for its partner to accept it before it is overdue",
    )
    monitor_escalate_hours: float = Field(
        72.0, description="Hours an overdue referral stays overdue before it is escalated"
    )
    monitor_readmission_days: int = Field(
        30,
        description="Days after a discharge (the discharge day is day 0) in which an admission is a readmission",
    )
    monitor_mh_services: list[str] = Field(
        default_factory=lambda: ["PSY", "PSYCH", "PSYCHIATRY", "BH", "MH", "394587001"],
        description="Encounter serviceType/type codes of a mental-health provider (FUH follow-up visits)",
    )
    monitor_fuh_activities: list[str] = Field(
        default_factory=lambda: [
            "http://fhir-gateway.org/fhir/ActivityDefinition/psychiatry-follow-up",
            "http://fhir-gateway.org/fhir/ActivityDefinition/therapy-intake",
            "http://fhir-gateway.org/fhir/ActivityDefinition/crisis-follow-up-call",
        ],
        description="ActivityDefinitions whose completed referral is a follow-up with a mental-health provider (FUH)",
    )
    monitor_reminder_hours: float = Field(
        48.0,
        description="Hours before a booked appointment that the family (with consent) is reminded",
    )

    # --- medication adherence (fhir_gateway.adherence) -------------------------------------------
    adherence_window_days: int = Field(
        180,
        ge=30,
        le=366,
        description="Days of the rolling window the proportion of days covered (PDC) is measured over, ending today",
    )
    adherence_threshold: float = Field(
        0.8,
        gt=0,
        le=1,
        description="PDC below which a medication class raises a low-adherence work item",
    )
    adherence_refill_grace_days: int = Field(
        7,
        ge=0,
        le=90,
        description="Days after a supply ran out (outside hospital) before a missing refill is a work item",
    )
    adherence_medications_dir: str | None = Field(
        None,
        description="Folder of the user's medication classes (ValueSet), product table (ConceptMap) and "
        "long-acting injectables (ActivityDefinition), over the shipped mappings/medications",
    )

    # --- web pages for people (fhir_gateway.web) --------------------------------------------------
    web_session_hours: float = Field(
        8.0, description="Hours a web sign-in lasts before the user signs in again"
    )

    # --- security (fhir_gateway.security) ------------------------------------------------------
    auth_enabled: bool = Field(
        True,
        description="SMART backend-services tokens required; false only via `serve --insecure-dev`",
    )
    signing_key_file: Path | None = Field(
        None,
        description="PEM file of the gateway's token-signing key (created if absent); default: in the database",
    )
    audit_enabled: bool = Field(
        True, description="Record an AuditEvent for every request and token"
    )
    rate_limit_per_minute: int = Field(
        1200, description="Requests per minute per client and process (token bucket); 0: no limit"
    )
    rate_limit_burst: int = Field(
        200, description="Requests a client may send at once before the limit bites"
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Browser origins allowed by CORS (empty: CORS off)"
    )

    # --- bounds on what one request may cost (DESIGN decision 15; past one: 4xx naming it) --------
    search_max_sort_keys: int = Field(5, description="Keys one _sort may name")
    search_max_parameters: int = Field(
        50,
        description="Parameters one search may give, repeats and result parameters included "
        "(_include and _revinclude count against search_max_includes instead)",
    )
    search_max_includes: int = Field(
        200,
        description="_include and _revinclude values one search may give (each is one bounded "
        "query; a CapabilityStatement claims up to about 110 _revinclude values for Patient)",
    )
    search_max_repeats: int = Field(
        10, description="Times one search parameter may be repeated (AND)"
    )
    search_max_values: int = Field(
        100, description="Comma-separated values (OR) one search parameter may give"
    )
    search_timeout: float = Field(
        10.0,
        description=(
            "Seconds a search may run in the database (a statement timeout on PostgreSQL, a "
            "progress handler on SQLite); over it: 400 too-costly. A client that leaves stops it too"
        ),
    )
    batch_max_entries: int = Field(
        500, description="Entries one batch or transaction Bundle may hold"
    )
    batch_max_response_bytes: int = Field(
        32 * 1024 * 1024, description="Largest batch/transaction response (the sum of its entries)"
    )
    max_json_values: int = Field(
        100_000,
        description=(
            "Values (objects, arrays, strings, numbers…) one JSON request body may hold; more: 413 "
            "(each costs validation and indexing: about 1 s per 10,000)"
        ),
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()
