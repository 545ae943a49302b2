"""Setting up and loading a gateway's nodes and its key directory from the files the settings name.

A gateway trusts a directory only when the directory authority (the province or national root) signed
it and it has not expired. `gateway init` on a machine without a province authority creates a local
one beside the data, for the demo and for a first trial; in production the operator points
GATEWAY_AUTHORITY_PUB at the province's public key and receives signed directories from it.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

from gateway.exchange.nodes import HostedNode
from gateway.private_paths import private_dir
from gateway.security.authority import load_authority, load_authority_public, new_authority, save_authority, sign_directory
from gateway.security.directory import KeyDirectory
from gateway.security.keys import generate_keyring, load_keyring, save_keyring, unencrypted_key_files
from gateway.settings import Settings

log = logging.getLogger(__name__)

LOCAL_DIRECTORY_VALIDITY = timedelta(days=30)


class SetupError(Exception):
    pass


def load_nodes(settings: Settings) -> dict[str, HostedNode]:
    if not settings.nodes:
        raise SetupError("no township nodes configured: set GATEWAY_NODES, e.g. GATEWAY_NODES=110101001,110101002")
    return {
        code: HostedNode(load_keyring(code, settings.resolved_keys_dir, settings.passphrase_bytes))
        for code in settings.nodes
    }


def refuse_plaintext_keys(settings: Settings) -> None:
    """``gateway serve`` runs with keys encrypted at rest, unless the operator says otherwise."""
    if settings.allow_plaintext_keys:
        log.warning("private keys may be unencrypted at rest (GATEWAY_ALLOW_PLAINTEXT_KEYS=1)")
        return
    clear = [code for code in settings.nodes if unencrypted_key_files(code, settings.resolved_keys_dir)]
    if clear:
        raise SetupError(
            f"private keys of {', '.join(clear[:3])}{' …' if len(clear) > 3 else ''} in {settings.resolved_keys_dir} "
            "are not encrypted at rest: set GATEWAY_KEY_PASSPHRASE before `gateway init` creates them, "
            "or set GATEWAY_ALLOW_PLAINTEXT_KEYS=1 to run with keys in clear"
        )


def load_directory(settings: Settings, now: datetime) -> KeyDirectory:
    """The key directory, refused unless signed by the configured authority and fresh."""
    path = settings.resolved_directory_path
    if not path.exists():
        raise SetupError(f"key directory {path} not found; run `gateway init`")
    authority_pub = settings.resolved_authority_pub
    if not authority_pub.exists():
        if settings.allow_unsigned_directory:
            log.warning("trusting the UNSIGNED key directory %s (GATEWAY_ALLOW_UNSIGNED_DIRECTORY)", path)
            return KeyDirectory.load(path)
        raise SetupError(
            f"no directory authority key at {authority_pub}: set GATEWAY_AUTHORITY_PUB to the province's public key"
        )
    return KeyDirectory.load(path, authority=load_authority_public(authority_pub), now=now)


def init_nodes(settings: Settings, now: datetime) -> list[str]:
    """Create keys for configured nodes that have none, publish them in the directory and sign it."""
    private_dir(settings.data_dir)
    keys_dir = private_dir(settings.resolved_keys_dir)
    created, keyrings = [], []
    for code in settings.nodes:
        if (keys_dir / code).exists():
            keyrings.append(load_keyring(code, keys_dir, settings.passphrase_bytes))
        else:
            keyring = generate_keyring(code)
            save_keyring(keyring, keys_dir, settings.passphrase_bytes)
            keyrings.append(keyring)
            created.append(code)
    path = settings.resolved_directory_path
    directory = KeyDirectory.from_keyrings(keyrings)
    if path.exists():
        directory = KeyDirectory.load(path).merged(directory)
    authority_key = settings.resolved_authority_key
    if not authority_key.exists():
        if settings.authority_key is not None:
            raise SetupError(f"authority key {authority_key} not found")
        save_authority(new_authority(f"local-{settings.gateway_id}"), authority_key, settings.passphrase_bytes)
    authority = load_authority(authority_key, settings.passphrase_bytes)
    signed = sign_directory(directory, authority, issued_at=now, valid_for=LOCAL_DIRECTORY_VALIDITY)
    private_dir(path.parent)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(signed, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return created
