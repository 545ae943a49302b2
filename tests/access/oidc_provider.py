"""A small OpenID Connect provider for tests, on a loopback port (uvicorn in a thread).

It serves discovery, JWKS, authorize and token the way a real provider does: the authorize step
signs in whoever the test put in ``next_login`` (no login page), remembers the code with the
client's PKCE challenge, nonce and redirect URI, and the token endpoint checks the client secret,
the redirect URI and the S256 verifier before it issues an RS256 ID token signed with its key
(joserfc). A test can make it misbehave: sign with another key, name another audience, issue an
expired token, or put another nonce in it.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

CLIENT_ID = "township-gateway"
CLIENT_SECRET = "test-client-secret-9f3a"


@dataclass
class Misbehaviour:
    foreign_key: bool = False  # sign with a key that is not in the JWKS
    audience: str | None = None  # another aud
    expired: bool = False
    nonce: str | None = None  # another nonce


@dataclass
class LoopbackProvider:
    now: Callable[[], datetime]
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"}))
    next_login: dict[str, Any] = field(default_factory=dict)  # the claims of whoever signs in next
    misbehave: Misbehaviour = field(default_factory=Misbehaviour)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: int = 0
    issuer: str = ""

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/.well-known/openid-configuration", self.discovery),
            Route("/jwks", self.jwks),
            Route("/authorize", self.authorize),
            Route("/token", self.token, methods=["POST"]),
        ])

    async def discovery(self, _: Request) -> Response:
        return JSONResponse({
            "issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        })

    async def jwks(self, _: Request) -> Response:
        return JSONResponse({"keys": [self.key.as_dict(private=False)]})

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code":
            return JSONResponse({"error": "unauthorized_client"}, status_code=400)
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge") or not q.get("nonce"):
            return JSONResponse({"error": "invalid_request", "error_description": "PKCE S256 and nonce required"},
                                status_code=400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"claims": dict(self.next_login), "nonce": q["nonce"], "challenge": q["code_challenge"],
                            "redirect_uri": q["redirect_uri"]}
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q.get('state', '')})}",
                                status_code=302)

    async def token(self, request: Request) -> Response:
        self.token_requests += 1
        form = await request.form()
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        client = base64.b64decode(credentials).decode() if scheme.lower() == "basic" else ""
        if client != f"{CLIENT_ID}:{CLIENT_SECRET}":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = self.codes.pop(str(form.get("code")), None)  # a code is used once
        if grant is None or form.get("grant_type") != "authorization_code":
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return JSONResponse({"error": "invalid_grant", "error_description": "redirect_uri"}, status_code=400)
        verifier = str(form.get("code_verifier", ""))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if not verifier or challenge != grant["challenge"]:
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE verifier"}, status_code=400)
        return JSONResponse({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300,
                             "id_token": self.id_token(grant["claims"], grant["nonce"])})

    def id_token(self, claims: dict[str, Any], nonce: str) -> str:
        m = self.misbehave
        now = self.now()
        exp = now - timedelta(minutes=10) if m.expired else now + timedelta(minutes=5)
        body = {"iss": self.issuer, "aud": m.audience or CLIENT_ID, "iat": int(now.timestamp()),
                "exp": int(exp.timestamp()), "nonce": m.nonce or nonce, **claims}
        key = RSAKey.generate_key(2048, parameters={"kid": "k1"}) if m.foreign_key else self.key
        return jwt.encode({"alg": "RS256", "kid": "k1"}, body, key)


class RunningProvider:
    """``with RunningProvider(provider) as issuer:`` serves it on 127.0.0.1 at a free port."""

    def __init__(self, provider: LoopbackProvider) -> None:
        self.provider = provider
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        provider.issuer = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(provider.app(), log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test OIDC provider did not start")
            time.sleep(0.02)
        return self.provider.issuer

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
