"""The one settings object. Read from the environment (prefix ``GATEWAY_``) or a ``gateway.env`` file.

There are no default secrets: key passphrases are unset unless the operator sets them, and the AMQP
default is the broker's own loopback-only ``guest`` account, which RabbitMQ refuses from other hosts.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from gateway.workflow.data_files import DEFAULT_CALENDAR_FILE, DEFAULT_DEADLINES_FILE, DEFAULT_SCORING_FILE


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_file="gateway.env", extra="ignore")

    gateway_id: str = Field("gw1", pattern=r"^[a-z0-9][a-z0-9-]{0,40}$", description="names this gateway's broker queue")
    # NoDecode: the environment carries "110101001,110101002", not JSON.
    nodes: Annotated[list[str], NoDecode] = Field(default_factory=list, description="township codes hosted by this gateway")
    data_dir: Path = Path("var")
    database_url: str | None = None
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    keys_dir: Path | None = None
    directory_path: Path | None = None
    key_passphrase: SecretStr | None = None
    authority_key: Path | None = Field(None, description="the directory authority's private key (signs the directory)")
    authority_pub: Path | None = Field(None, description="the directory authority's public key (verifies it)")
    allow_unsigned_directory: bool = False
    exchange: str = "township.exchange"
    prefetch: int = Field(200, ge=1, le=10_000)
    publish_timeout_s: float = Field(10.0, gt=0)
    broker_start_timeout_s: float = Field(120.0, gt=0, description="how long start-up waits for the broker before giving up")
    relay_batch: int = Field(500, ge=1)
    calendar_file: Path = DEFAULT_CALENDAR_FILE
    deadlines_file: Path = DEFAULT_DEADLINES_FILE
    scoring_file: Path = DEFAULT_SCORING_FILE
    tick_interval_s: float = Field(60.0, ge=0, description="how often deadlines, reminders and cutoffs are checked; 0 = never")
    archive_interval_s: float = Field(1.0, gt=0, description="how often new envelopes are chained into the archive")
    quarantine_prefix_bytes: int = Field(
        64 * 1024, ge=0, description="how much of a refused message the quarantine keeps (its size and SHA-256 always)"
    )
    allow_plaintext_keys: bool = Field(
        False, description="let `gateway serve` run with private keys unencrypted at rest (no GATEWAY_KEY_PASSPHRASE)"
    )
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Sign-in through the province's identity provider (OpenID Connect; docs/access.md). Unset issuer: off.
    oidc_issuer: str | None = Field(None, description="the IdP's issuer URL; its /.well-known/openid-configuration is read")
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_redirect_url: str | None = Field(
        None, description="this gateway's /auth/oidc/callback as registered at the IdP (default: from the request)")
    oidc_role_claim: str = Field("gateway_role", description="the ID token claim holding the role (clerk, supervisor, …)")
    oidc_scope_claim: str = Field("gateway_scope", description="the claim holding the township or region code")
    oidc_username_claim: str = Field("preferred_username", description="the claim naming the local account made")
    oidc_idp_second_factor: bool = Field(
        False, description="trust the IdP's amr/acr as the second factor of operators, auditors and admins")
    oidc_second_factor_amr: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["mfa", "otp", "hwk", "swk", "sms"],
        description="amr values (RFC 8176) that count as a second factor")
    oidc_second_factor_acr: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="acr values that count as a second factor")

    @field_validator("nodes", mode="before")
    @classmethod
    def _split_nodes(cls, value: object) -> object:
        # Environment variables carry lists as "110101001,110101002".
        if isinstance(value, str) and not value.lstrip().startswith("["):
            return [code.strip() for code in value.split(",") if code.strip()]
        return value

    @field_validator("oidc_second_factor_amr", "oidc_second_factor_acr", mode="before")
    @classmethod
    def _split_words(cls, value: object) -> object:
        if isinstance(value, str) and not value.lstrip().startswith("["):
            return [word.strip() for word in value.split(",") if word.strip()]
        return value

    @field_validator("nodes")
    @classmethod
    def _township_codes(cls, value: list[str]) -> list[str]:
        for code in value:
            if len(code) != 9 or not code.isdigit():
                raise ValueError(f"{code!r} is not a 9-digit township code")
        return value

    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'gateway.db').resolve()}"

    @property
    def resolved_keys_dir(self) -> Path:
        return self.keys_dir or self.data_dir / "keys"

    @property
    def resolved_directory_path(self) -> Path:
        return self.directory_path or self.data_dir / "directory.json"

    @property
    def resolved_authority_key(self) -> Path:
        return self.authority_key or self.data_dir / "authority" / "authority.key"

    @property
    def resolved_authority_pub(self) -> Path:
        return self.authority_pub or self.resolved_authority_key.with_suffix(".pub")

    @property
    def passphrase_bytes(self) -> bytes | None:
        return self.key_passphrase.get_secret_value().encode() if self.key_passphrase else None

    @property
    def queue_name(self) -> str:
        return f"gateway.{self.gateway_id}.inbox"
