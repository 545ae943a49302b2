"""The one settings object. Read from the environment (prefix ``GATEWAY_``) or a ``gateway.env`` file.

There are no default secrets: key passphrases are unset unless the operator sets them, and the AMQP
default is the broker's own loopback-only ``guest`` account, which RabbitMQ refuses from other hosts.
"""

from __future__ import annotations

from dataclasses import fields
from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from gateway.access.audit_files import AuditFiles
from gateway.codec.xlsx_guard import ImportLimits
from gateway.exchange.refusals import QuarantineCaps
from gateway.workflow.data_files import DEFAULT_CALENDAR_FILE, DEFAULT_DEADLINES_FILE, DEFAULT_SCORING_FILE


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_file="gateway.env", extra="ignore")

    gateway_id: str = Field("gw1", pattern=r"^[a-z0-9][a-z0-9-]{0,40}$", description="names this gateway's broker queue")
    # NoDecode: the environment carries "110101001,110101002", not JSON.
    nodes: Annotated[list[str], NoDecode] = Field(default_factory=list, description="township codes hosted by this gateway")
    data_dir: Path = Path("var")
    database_url: str | None = None
    # One address, or the nodes of a cluster separated by commas: the gateway fails over between them.
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    keys_dir: Path | None = None
    directory_path: Path | None = None
    key_passphrase: SecretStr | None = None
    # The audit trail's key and head checkpoint, outside the database (gateway/access/audit_files.py).
    audit_key_file: Path | None = Field(None, description="the audit chain's HMAC key (default <data dir>/audit.key)")
    audit_head_file: Path | None = Field(None, description="the audit chain's head checkpoint (default <data dir>/audit.head)")
    authority_key: Path | None = Field(None, description="the directory authority's private key (signs the directory)")
    authority_pub: Path | None = Field(None, description="the directory authority's public key (verifies it)")
    allow_unsigned_directory: bool = False
    exchange: str = "township.exchange"
    declare_topology: bool = Field(True, description="declare exchanges, queue and bindings at start-up; false when "
                                   "the operator loads them from definitions and the broker user may configure nothing")
    prefetch: int = Field(200, ge=1, le=10_000)
    publish_timeout_s: float = Field(10.0, gt=0)
    broker_start_timeout_s: float = Field(120.0, gt=0, description="how long start-up waits for the broker before giving up")
    relay_batch: int = Field(500, ge=1)
    calendar_file: Path = DEFAULT_CALENDAR_FILE
    deadlines_file: Path = DEFAULT_DEADLINES_FILE
    scoring_file: Path = DEFAULT_SCORING_FILE
    tick_interval_s: float = Field(60.0, ge=0, description="how often deadlines, reminders and cutoffs are checked; 0 = never")
    archive_interval_s: float = Field(1.0, gt=0, description="how often new envelopes are chained into the archive")
    tally_interval_s: float = Field(2.0, ge=0, description="how often the cases changed since are counted into the "
                                    "dashboard's tallies (pages count the rest themselves); 0 = never")
    quarantine_prefix_bytes: int = Field(
        64 * 1024, ge=0, description="how much of a refused message the quarantine keeps (its size and SHA-256 always)"
    )
    # The quarantine's caps (gateway/exchange/refusals.py, QuarantineCaps): refusals beyond are counted only.
    # "signed": a peer's correctly signed message refused for a rule; "unsigned": junk anyone may publish.
    quarantine_signed_rows: int = Field(10_000, ge=0, description="signed refusals the quarantine keeps")
    quarantine_signed_per_hour: int = Field(1_000, ge=0, description="signed refusals stored per hour")
    quarantine_signed_per_sender_per_hour: int = Field(200, ge=0, description="… of them from one township")
    quarantine_signed_keep_days: int = Field(90, ge=1, description="when full, signed rows older are deleted")
    quarantine_unsigned_rows: int = Field(1_000, ge=0, description="unauthenticated refusals the quarantine keeps")
    quarantine_unsigned_per_hour: int = Field(100, ge=0, description="unauthenticated refusals stored per hour")
    quarantine_unsigned_per_sender_per_hour: int = Field(20, ge=0, description="… of them claiming one township")
    quarantine_unsigned_keep_days: int = Field(7, ge=1, description="when full, unauthenticated rows older are deleted")
    allow_plaintext_keys: bool = Field(
        False, description="let `gateway serve` run with private keys unencrypted at rest (no GATEWAY_KEY_PASSPHRASE)"
    )
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # HTTPS straight from the gateway (or put the reverse proxy of deploy/nginx in front): both or neither.
    http_tls_cert: Path | None = Field(None, description="PEM certificate (chain) for HTTPS")
    http_tls_key: Path | None = Field(None, description="PEM private key for HTTPS")
    # Host header allow-list (DNS rebinding): a page on another name that resolves to 127.0.0.1 cannot
    # reach the API. Add the names clerks use when serving beyond loopback; "*" turns the check off.
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1", "localhost"], description="Host header values the HTTP API answers"
    )
    max_body_bytes: int = Field(1024 * 1024, ge=1024, description="largest JSON request body (413 beyond)")
    max_import_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="largest import upload (413 beyond)")
    import_max_rows: int = Field(20_000, ge=1, description="rows per import file (the file is refused beyond)")
    import_max_unpacked_mb: int = Field(100, ge=1, description="what an .xlsx may unpack to")
    import_max_shared_strings: int = Field(500_000, ge=1, description="shared strings an .xlsx may hold")
    import_workers: int = Field(1, ge=1, le=8, description="processes that parse imports, off the event loop")
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
    # Sign-in under attack (docs/access.md, "Sign-in under attack"): the account lock, the throttles in
    # front of it, and how long a session may last however busy.
    sign_in_max_failures: int = Field(5, ge=1, le=100, description="attempts without a sign-in that lock the account")
    sign_in_lock_minutes: int = Field(15, ge=1, description="how long a lock lasts (also the throttles' window)")
    sign_in_address_name_failures: int = Field(
        3, ge=1, description="failures from one address on one name per window before 429 (keep it below max_failures)")
    sign_in_address_failures: int = Field(10, ge=1, description="failures from one address on any names per window before 429")
    sign_in_global_per_second: float = Field(20.0, gt=0, description="sign-in attempts per second the gateway admits")
    sign_in_global_burst: int = Field(40, ge=1, description="attempts admitted at once after a quiet spell")
    sign_in_in_flight: int = Field(8, ge=1, description="sign-ins checked at the same time (each an Argon2 verify)")
    session_max_hours: float = Field(12.0, gt=0, description="a browser session ends this long after sign-in, however used")
    sign_in_admin_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="networks (CIDR) operators, auditors and admins may sign in from; "
        "attempts from elsewhere are neither checked nor counted (empty: anywhere)")

    @field_validator("sign_in_admin_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str) and not value.lstrip().startswith("["):
            return [net.strip() for net in value.split(",") if net.strip()]
        return value

    @field_validator("sign_in_admin_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for net in value:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"{net!r} is not a network (e.g. 10.20.0.0/16 or 2001:db8::/32)") from None
        return value

    # --- Uploads bounded by what they claim, and the HTTP edge (issue 24, items 2 and 4) ---------------
    import_max_cells: int = Field(2_000_000, ge=1, description="rows × columns an .xlsx sheet may span (its "
                                  "grid is what a reader allocates)")
    import_worker_memory_mb: int = Field(2048, ge=0, description="address space of an import worker (RLIMIT_AS); "
                                         "a file needing more is refused; 0 = no limit")
    http_header_timeout_s: float = Field(10.0, gt=0, description="time a connection has to send a whole request "
                                         "head (slow-header clients are closed)")
    http_keep_alive_s: int = Field(5, ge=1, description="how long an idle keep-alive connection stays open")
    http_max_connections: int = Field(1000, ge=2, description="open HTTP connections; beyond, the oldest one that "
                                      "has not sent a whole request head is closed")
    http_limit_concurrency: int = Field(500, ge=1, description="requests served at once; beyond, 503")
    http_max_header_bytes: int = Field(16 * 1024, ge=1024, description="largest request head (h11)")
    forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1", "::1"],
        description="proxies (addresses or networks) whose X-Forwarded-For/-Proto are believed")
    log_repeats_per_minute: int = Field(20, ge=1, description="log records of one kind per minute; the rest are "
                                        "counted and summarised")
    hsts_max_age_s: int = Field(31_536_000, ge=0, description="Strict-Transport-Security max-age on HTTPS; 0 = not sent")

    @field_validator("nodes", "allowed_hosts", "forwarded_allow_ips", mode="before")
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
    def audit_files(self) -> AuditFiles:
        return AuditFiles(self.audit_key_file or self.data_dir / "audit.key",
                          self.audit_head_file or self.data_dir / "audit.head")

    @property
    def passphrase_bytes(self) -> bytes | None:
        return self.key_passphrase.get_secret_value().encode() if self.key_passphrase else None

    @property
    def queue_name(self) -> str:
        return f"gateway.{self.gateway_id}.inbox"

    @property
    def quarantine_caps(self) -> QuarantineCaps:
        return QuarantineCaps(**{f.name: getattr(self, f"quarantine_{f.name}") for f in fields(QuarantineCaps)})

    @property
    def import_limits(self) -> ImportLimits:
        return ImportLimits(
            max_rows=self.import_max_rows,
            max_unpacked_bytes=self.import_max_unpacked_mb * 1024 * 1024,
            max_shared_strings=self.import_max_shared_strings,
            max_cells=self.import_max_cells,
        )
