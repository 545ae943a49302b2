"""Sign-in through a province's identity provider: the OpenID Connect authorization code flow.

- the client is authlib's (``AsyncOAuth2Client``): PKCE with S256, ``state`` and ``nonce`` fresh per
  sign-in, the code exchanged at the provider's token endpoint with the client secret;
- the ID token is verified with joserfc (authlib's JOSE library): its signature against the
  provider's JWKS (fetched again once for an unknown key id, so a key rotation works), ``iss``
  equal to the configured issuer, ``aud`` holding the client id, ``exp``/``iat`` on the gateway's
  clock, and the ``nonce`` of this sign-in;
- the claims are mapped to a role and a scope (``GATEWAY_OIDC_ROLE_CLAIM``,
  ``GATEWAY_OIDC_SCOPE_CLAIM``); an operator, auditor or admin needs the provider's second factor
  (``amr``/``acr``), and only when ``GATEWAY_OIDC_IDP_SECOND_FACTOR`` says the gateway trusts it.

Anything wrong raises ``OidcProblem`` with one of the sign-in codes and a reason for the audit
trail (claim names and values of role and scope, never a name or an ID number).
"""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from gateway.access.principal import Role
from gateway.access.service import SECOND_FACTOR_ROLES, Identity
from gateway.settings import Settings

import authlib.deprecate  # noqa: E402,F401  (it turns its warnings on at import: first, then quieten it)

with warnings.catch_warnings():
    # authlib 1.9 announces a move to "httpx2" on import; the httpx client works and is what we have.
    warnings.simplefilter("ignore")
    from authlib.integrations.httpx_client import AsyncOAuth2Client

__all__ = ["OidcConfig", "OidcClient", "OidcProblem", "Pending"]

ID_TOKEN_ALGORITHMS = ["RS256", "ES256", "PS256", "EdDSA"]  # asymmetric only: never "none" or HS256
LEEWAY_S = 60


class OidcProblem(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str
    redirect_url: str | None = None
    role_claim: str = "gateway_role"
    scope_claim: str = "gateway_scope"
    username_claim: str = "preferred_username"
    idp_second_factor: bool = False
    second_factor_amr: frozenset[str] = frozenset({"mfa", "otp", "hwk", "swk", "sms"})
    second_factor_acr: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcConfig | None:
        if not settings.oidc_issuer:
            return None
        if not settings.oidc_client_id or settings.oidc_client_secret is None:
            raise ValueError("GATEWAY_OIDC_ISSUER needs GATEWAY_OIDC_CLIENT_ID and GATEWAY_OIDC_CLIENT_SECRET")
        return cls(
            issuer=settings.oidc_issuer, client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret.get_secret_value(), redirect_url=settings.oidc_redirect_url,
            role_claim=settings.oidc_role_claim, scope_claim=settings.oidc_scope_claim,
            username_claim=settings.oidc_username_claim, idp_second_factor=settings.oidc_idp_second_factor,
            second_factor_amr=frozenset(settings.oidc_second_factor_amr),
            second_factor_acr=frozenset(settings.oidc_second_factor_acr),
        )


@dataclass(frozen=True)
class Pending:
    """What one sign-in keeps between leaving for the provider and coming back (in a cookie)."""

    state: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))  # PKCE: 64 characters
    next: str = "/"


def _username_ok(name: str) -> bool:
    return 0 < len(name) <= 64 and all(c.isalnum() or c in "._-@" for c in name)


class OidcClient:
    def __init__(self, config: OidcConfig, now: Callable[[], datetime], *, timeout_s: float = 10.0) -> None:
        self.config = config
        self.now = now
        self.timeout_s = timeout_s
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None

    def _client(self, redirect_uri: str | None = None) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(self.config.client_id, self.config.client_secret, scope="openid profile",
                                 redirect_uri=redirect_uri, code_challenge_method="S256", timeout=self.timeout_s)

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as http:
                response = await http.get(url)
                response.raise_for_status()
                body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcProblem("oidc_failed", f"cannot read {url}: {type(exc).__name__}") from None
        if not isinstance(body, dict):
            raise OidcProblem("oidc_failed", f"{url} is not a JSON object")
        return body

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            found = await self._get_json(self.config.issuer.rstrip("/") + "/.well-known/openid-configuration")
            if found.get("issuer") != self.config.issuer:
                raise OidcProblem("oidc_failed", "the discovery document names another issuer")
            for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(found.get(key), str):
                    raise OidcProblem("oidc_failed", f"the discovery document has no {key}")
            self._metadata = found
        return self._metadata

    async def _key_set(self, *, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            jwks = await self._get_json((await self.metadata())["jwks_uri"])
            try:
                self._keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
            except (JoseError, ValueError, KeyError, TypeError):
                raise OidcProblem("oidc_failed", "the provider's JWKS cannot be read") from None
        return self._keys

    async def authorization_url(self, pending: Pending, redirect_uri: str) -> str:
        url, _ = self._client(redirect_uri).create_authorization_url(
            (await self.metadata())["authorization_endpoint"], state=pending.state, nonce=pending.nonce,
            code_verifier=pending.verifier)
        return str(url)

    async def exchange(self, code: str, pending: Pending, redirect_uri: str) -> dict[str, Any]:
        """Redeem the code (with the PKCE verifier); the verified claims of its ID token."""
        try:
            async with self._client(redirect_uri) as client:
                token = await client.fetch_token((await self.metadata())["token_endpoint"], code=code,
                                                 code_verifier=pending.verifier, grant_type="authorization_code")
        except OidcProblem:
            raise
        except Exception as exc:  # authlib's OAuthError, httpx errors, a body that is not JSON
            raise OidcProblem("oidc_failed", f"the token endpoint refused the code: {str(exc)[:200]}") from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise OidcProblem("oidc_failed", "the token response has no ID token")
        return await self.verify_id_token(id_token, pending.nonce)

    async def verify_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        try:
            try:
                decoded = jwt.decode(id_token, await self._key_set(), algorithms=ID_TOKEN_ALGORITHMS)
            except (ValueError, JoseError):
                # Perhaps signed with a key the provider rotated in since we fetched its JWKS: once more.
                decoded = jwt.decode(id_token, await self._key_set(refresh=True), algorithms=ID_TOKEN_ALGORITHMS)
            claims = decoded.claims
            jwt.JWTClaimsRegistry(
                now=lambda: int(self.now().timestamp()), leeway=LEEWAY_S,
                iss={"essential": True, "value": self.config.issuer},
                aud={"essential": True, "value": self.config.client_id},
                sub={"essential": True}, exp={"essential": True}, iat={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(claims)
        except (ValueError, JoseError) as exc:
            raise OidcProblem("oidc_failed", f"ID token refused: {type(exc).__name__} {str(exc)[:160]}") from None
        if claims.get("iat", 0) > self.now().timestamp() + LEEWAY_S:
            raise OidcProblem("oidc_failed", "ID token refused: issued in the future")
        if isinstance(claims.get("aud"), list) and len(claims["aud"]) > 1 and claims.get("azp") != self.config.client_id:
            raise OidcProblem("oidc_failed", "ID token refused: several audiences and azp is not this gateway")
        return claims

    def identity(self, claims: dict[str, Any]) -> Identity:
        """The claims mapped to an account (the scope's form is checked by the access service)."""
        c = self.config
        role_value = claims.get(c.role_claim)
        try:
            role = Role(role_value)  # type: ignore[arg-type]
        except ValueError:
            shown = repr(role_value)[:40] if role_value is not None else "missing"
            raise OidcProblem("oidc_role", f"claim {c.role_claim} is {shown}: not one of "
                                           f"{', '.join(r.value for r in Role)}") from None
        scope = claims.get(c.scope_claim, "")
        if not isinstance(scope, str):
            raise OidcProblem("oidc_scope", f"claim {c.scope_claim} is not a string")
        username = claims.get(c.username_claim)
        if not isinstance(username, str) or not _username_ok(username):
            raise OidcProblem("oidc_username", f"claim {c.username_claim} is missing or not 1 to 64 letters, "
                                               "digits or . _ - @")
        if role in SECOND_FACTOR_ROLES:
            if not c.idp_second_factor:
                raise OidcProblem("oidc_second_factor", f"a {role.value} signs in with password and one-time code "
                                                        "(GATEWAY_OIDC_IDP_SECOND_FACTOR is off)")
            amr = claims.get("amr")
            amr_values = set(amr) if isinstance(amr, list) and all(isinstance(a, str) for a in amr) else set()
            if not (amr_values & c.second_factor_amr or claims.get("acr") in c.second_factor_acr):
                raise OidcProblem("oidc_second_factor", f"a {role.value} needs the provider's second factor "
                                                        f"(amr {sorted(amr_values) or 'missing'})")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not 0 < len(subject) <= 255:
            raise OidcProblem("oidc_failed", "claim sub is not a string of 1 to 255 characters")
        return Identity(c.issuer, subject, username, role, scope.strip())

    def claimed_username(self, claims: dict[str, Any]) -> str:
        """The account name a refused sign-in is recorded under ("" when the claim is unusable)."""
        name = claims.get(self.config.username_claim)
        return name if isinstance(name, str) and _username_ok(name) else ""
