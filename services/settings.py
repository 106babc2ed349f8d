"""Settings: built once at start-up from ``LIAISON_*`` environment variables and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from schemas.errors import ConfigurationError
from schemas.topics import DAY_MS, QUARANTINE_RETENTION_DAYS, Topics

__all__ = ["DEFAULT_LOCAL_PORT", "DEMO_ROUTER_INSTANCE", "Settings", "load_settings"]

DEFAULT_LOCAL_PORT = 39092
"""The local broker's port: not Kafka's default 9092, so it does not clash with another."""

_REPO_ROOT = Path(__file__).resolve().parent.parent

DEMO_ROUTER_INSTANCE = "demo"
"""The router instance `liaison demo` runs as: no serving router may take it, so the demo
never shares a serving router's Kafka transactional id."""


class Settings(BaseSettings):
    """Everything Liaison reads from its environment (prefix ``LIAISON_``)."""

    model_config = SettingsConfigDict(env_prefix="LIAISON_", extra="ignore", frozen=True)

    bootstrap_servers: str = Field(
        default="",
        description="Kafka bootstrap servers; default: the local broker on 127.0.0.1.",
    )
    home: Path = Field(
        default=Path(".liaison"),
        description="The one directory under which Liaison keeps everything on this machine.",
    )
    topic_prefix: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9._-]*$",
        description="Prefix on every topic name (tests use one; production uses none).",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT",
        description=(
            "How every Kafka client Liaison makes connects: PLAINTEXT (the local broker),"
            " SSL (TLS), SASL_SSL (TLS and SCRAM: a production cluster) or SASL_PLAINTEXT."
        ),
    )
    kafka_ca_file: Path | None = Field(
        default=None,
        description="TLS: the CA certificate(s) (PEM) brokers' certificates are checked"
        " against; default: the system's CAs.",
    )
    kafka_cert_file: Path | None = Field(
        default=None, description="TLS: this client's certificate (PEM), for mutual TLS."
    )
    kafka_key_file: Path | None = Field(
        default=None, description="TLS: this client's private key (PEM), for mutual TLS."
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256"] = Field(
        default="SCRAM-SHA-512", description="SASL: the SCRAM mechanism."
    )
    kafka_sasl_username: str | None = Field(
        default=None, description="SASL: this client's principal (user name)."
    )
    kafka_sasl_password: SecretStr | None = Field(
        default=None, description="SASL: the principal's password (never logged)."
    )
    kafka_sasl_password_file: Path | None = Field(
        default=None, description="SASL: a file holding the principal's password."
    )
    replication_factor: int = Field(
        default=1, ge=1, description="Replication factor of topics created by `topics apply`."
    )
    local_broker_port: int = Field(default=DEFAULT_LOCAL_PORT, ge=1024, le=65534)
    local_broker_heap_mb: int = Field(default=512, ge=128)
    cluster_base_port: int = Field(
        default=39300,
        ge=1024,
        le=65526,
        description=(
            "`liaison cluster`: node n (1 to 3) takes clients (SASL_SSL) on base+n-1, the"
            " other nodes (mutual TLS) on base+3+n-1, the controllers on base+6+n-1."
        ),
    )
    cluster_heap_mb: int = Field(
        default=384, ge=128, description="`liaison cluster`: each node's JVM heap (MiB)."
    )
    deploy_dir: Path = Field(
        default=_REPO_ROOT / "deploy",
        description="Configuration files: local broker pom and config, routing rules.",
    )
    signing_key: SecretStr | None = Field(
        default=None, description="A PKCS#8 PEM Ed25519 private key to sign with (never logged)."
    )
    signing_key_file: Path | None = Field(
        default=None, description="A file holding the PEM private key to sign with."
    )
    trust_root: Path | None = Field(
        default=None,
        description=(
            "The pinned trust root (root public keys and threshold) that signs every key"
            " change; default LIAISON_HOME/keys/[prefix-<prefix>/]root.json. Deployment"
            " configuration: never learnt from Kafka."
        ),
    )
    reader_host: str = Field(
        default="127.0.0.1", description="Where `liaison serve reader` listens (address)."
    )
    reader_port: int = Field(
        default=39080, ge=1, le=65535, description="Where `liaison serve reader` listens (port)."
    )
    reader_url: str = Field(
        default="",
        description="The reader service analysts' tools call; default http://<host>:<port>.",
    )
    dashboard_host: str = Field(
        default="127.0.0.1", description="Where `liaison serve dashboard` listens (address)."
    )
    dashboard_port: int = Field(
        default=39081,
        ge=1,
        le=65535,
        description="Where `liaison serve dashboard` listens (port).",
    )
    dashboard_allowed_hosts: tuple[str, ...] = Field(
        default=(),
        description=(
            "More Host names the dashboard answers to (JSON list), e.g. the public name a"
            " TLS proxy in front of it forwards; its listen address always works."
        ),
    )
    dashboard_session_minutes: int = Field(
        default=480,
        ge=1,
        le=1440,
        description="How long a dashboard sign-in lasts before the analyst signs in again.",
    )
    analyst_token: SecretStr | None = Field(
        default=None, description="An analyst's credential for the reader service (never logged)."
    )
    analyst_token_file: Path | None = Field(
        default=None, description="A file holding the analyst's credential."
    )
    rules_file: Path | None = Field(
        default=None, description="Routing rules (TOML); default: deploy/rules.toml."
    )
    audit_store: Path | None = Field(
        default=None,
        description="The audit service's SQLite store; default LIAISON_HOME/audit/audit.sqlite3.",
    )
    router_instance: str = Field(
        default="0",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description=(
            "This router's name among several (each its own): its static group membership,"
            " so a restarted router takes back the partitions it had."
        ),
    )
    router_dedupe_days: int = Field(
        default=400,
        ge=1,
        le=3650,
        description=(
            "How long the router remembers an id it routed (its dedupe horizon, in days):"
            " a copy of an event within it is ignored as a duplicate; an id older is"
            " forgotten, so the router's state stays bounded."
        ),
    )
    quarantine_retention_days: int = Field(
        default=QUARANTINE_RETENTION_DAYS,
        ge=1,
        le=36500,  # a century: bounded, and retention.ms stays far inside Kafka's long
        description="Days liaison.quarantine keeps refused records (raw bytes) before deleting.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    @field_validator("router_instance")
    @classmethod
    def _not_the_demos(cls, value: str) -> str:
        if value == DEMO_ROUTER_INSTANCE:
            msg = f"{DEMO_ROUTER_INSTANCE!r} is the router instance of `liaison demo`"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _kafka_security(self) -> Self:
        sasl = self.kafka_security_protocol.startswith("SASL_")
        if sasl and not self.kafka_sasl_username:
            msg = f"LIAISON_KAFKA_SASL_USERNAME is needed with {self.kafka_security_protocol}"
            raise ValueError(msg)
        if sasl and (self.kafka_sasl_password is None) == (self.kafka_sasl_password_file is None):
            msg = (
                f"{self.kafka_security_protocol} needs one of LIAISON_KAFKA_SASL_PASSWORD and"
                " LIAISON_KAFKA_SASL_PASSWORD_FILE"
            )
            raise ValueError(msg)
        if (self.kafka_cert_file is None) != (self.kafka_key_file is None):
            msg = "LIAISON_KAFKA_CERT_FILE and LIAISON_KAFKA_KEY_FILE go together"
            raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _default_bootstrap(self) -> Self:
        # frozen model: defaults that depend on other fields are set through __dict__ once,
        # during validation
        if not self.bootstrap_servers:
            self.__dict__["bootstrap_servers"] = f"127.0.0.1:{self.local_broker_port}"
        if not self.reader_url:
            self.__dict__["reader_url"] = f"http://{self.reader_host}:{self.reader_port}"
        return self

    @property
    def rules_path(self) -> Path:
        """The routing rules file in force."""
        return self.rules_file or self.deploy_dir / "rules.toml"

    @property
    def topics(self) -> Topics:
        """Topic names under this deployment's prefix."""
        return Topics(
            self.topic_prefix, quarantine_retention_ms=self.quarantine_retention_days * DAY_MS
        )


def load_settings() -> Settings:
    """Settings from the environment; a bad variable is a ``ConfigurationError`` naming it.

    The message names each variable and what it must be, never its value (it may be a
    secret, such as ``LIAISON_SIGNING_KEY``).
    """
    try:
        return Settings()
    except ValidationError as exc:
        problems = [
            f"{_variable(error['loc'])}: {error['msg']}" if error["loc"] else error["msg"]
            for error in exc.errors(include_url=False, include_input=False)
        ]
        raise ConfigurationError("; ".join(problems)) from None
    except SettingsError:
        raise ConfigurationError("a LIAISON_* variable could not be read") from None


def _variable(loc: tuple[int | str, ...]) -> str:
    return "LIAISON_" + str(loc[0]).upper()
