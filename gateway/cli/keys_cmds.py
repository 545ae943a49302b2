"""`gateway keys …` operator commands: node keys, rotation, revocation, the signed key directory.

Paths default from the environment: GATEWAY_KEYS_DIR (node private keys), GATEWAY_DIRECTORY_PATH
(the directory file), GATEWAY_AUTHORITY_KEY (the authority's private key, kept off the gateways).
Passphrases come only from GATEWAY_KEY_PASSPHRASE / GATEWAY_AUTHORITY_PASSPHRASE, never from a
command-line argument, which other users of the machine could read in the process list.

Commands that change the directory write it back unsigned; `gateway keys directory sign` signs it,
and gateways refuse it until then.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated

import typer

from gateway.security.directory import KeyDirectory
from gateway.security.errors import EnvelopeError
from gateway.security.keys import KeyFileError, generate_keyring, key_id, load_keyring, rotate_keyring, save_keyring
from gateway.security.suites import SUITE_ORDER, SUITES

app = typer.Typer(no_args_is_help=True, help="Node keys, rotation, revocation and the signed key directory.")
authority_app = typer.Typer(no_args_is_help=True, help="The directory authority's key.")
directory_app = typer.Typer(no_args_is_help=True, help="The key directory file.")
app.add_typer(authority_app, name="authority")
app.add_typer(directory_app, name="directory")

KeysDir = Annotated[Path, typer.Option("--keys-dir", envvar="GATEWAY_KEYS_DIR", help="Folder of node private keys.")]
DirectoryPath = Annotated[Path, typer.Option("--directory", envvar="GATEWAY_DIRECTORY_PATH", help="Key directory file.")]
AuthorityKey = Annotated[Path, typer.Option("--authority-key", envvar="GATEWAY_AUTHORITY_KEY", help="Authority private key (PEM).")]
AtOption = Annotated[str | None, typer.Option("--at", help="ISO 8601 instant with time zone (default: now).")]

# The same files the gateway uses by default (gateway/settings.py: data dir "var").
DEFAULT_KEYS_DIR = Path("var/keys")
DEFAULT_DIRECTORY = Path("var/directory.json")
DEFAULT_AUTHORITY = Path("var/authority/authority.key")


def _passphrase(var: str) -> bytes | None:
    value = os.environ.get(var)
    return value.encode() if value else None


def _instant(text: str | None) -> datetime:
    if text is None:
        return datetime.now(timezone.utc)
    try:
        instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        typer.echo(f"--at: not an ISO 8601 instant: {text!r}", err=True)
        raise typer.Exit(2) from None
    if instant.tzinfo is None:
        typer.echo("--at: give a time zone (e.g. 2025-03-01T08:00:00+08:00)", err=True)
        raise typer.Exit(2)
    return instant


def _load_directory(path: Path) -> KeyDirectory:
    return KeyDirectory.load(path) if path.exists() else KeyDirectory([])


def _audited(township: str, detail: str) -> None:
    """A key or directory change is an audit record where the gateway's database is at hand."""
    from gateway.access.audit import Action
    from gateway.cli.access_cmds import record_cli_event

    record_cli_event(Action.KEY_CHANGE, object_id=township, township=township if township.isdigit() else "", detail=detail)


def _fail(message: str) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(1)


@authority_app.command("init")
def authority_init(
    name: Annotated[str, typer.Option("--name", help="Who the authority is, e.g. the province code.")] = "authority",
    out: AuthorityKey = DEFAULT_AUTHORITY,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing key.")] = False,
) -> None:
    """Create the authority key; prints the public-key file that every gateway must be configured with."""
    from gateway.security.authority import new_authority, save_authority

    if out.exists() and not force:
        _fail(f"{out} exists; use --force to replace it")
    authority = new_authority(name)
    pub = save_authority(authority, out, _passphrase("GATEWAY_AUTHORITY_PASSPHRASE"))
    typer.echo(f"authority {authority.kid}: private key {out}, public key {pub}")


@app.command("init")
def init(
    township: Annotated[str, typer.Argument(metavar="TOWNSHIP")],
    keys_dir: KeysDir = DEFAULT_KEYS_DIR,
    directory: DirectoryPath = DEFAULT_DIRECTORY,
    sm2: Annotated[bool, typer.Option("--sm2/--no-sm2", help="Also create SM2 keys for the 国密 suite.")] = True,
    suites: Annotated[list[str] | None, typer.Option("--suite", help="Accepted suites, best first (repeat).")] = None,
    at: AtOption = None,
) -> None:
    """Create a node's keys and publish its public keys in the (unsigned) directory."""
    if (keys_dir / township).exists():
        _fail(f"{keys_dir / township} exists; use `gateway keys rotate {township}`")
    keyring = generate_keyring(township, sm2=sm2)
    accepted = suites or keyring.suites()
    unknown = [s for s in accepted if s not in SUITES or s not in keyring.suites()]
    if unknown:
        _fail(f"cannot accept {unknown}: known suites with keys here are {keyring.suites()}")
    save_keyring(keyring, keys_dir, _passphrase("GATEWAY_KEY_PASSPHRASE"))
    _load_directory(directory).with_node(keyring, at=_instant(at), suites=accepted).save(directory)
    _audited(township, "init")
    typer.echo(f"{keyring!r}\ndirectory {directory} updated (unsigned: run `gateway keys directory sign`)")


@app.command("rotate")
def rotate(
    township: Annotated[str, typer.Argument(metavar="TOWNSHIP")],
    keys_dir: KeysDir = DEFAULT_KEYS_DIR,
    directory: DirectoryPath = DEFAULT_DIRECTORY,
    grace_days: Annotated[float, typer.Option("--grace-days", help="How long old encryption keys still decrypt.")] = 7.0,
    at: AtOption = None,
) -> None:
    """New keys for TOWNSHIP; old signing keys end now, old encryption keys after the grace period."""
    passphrase = _passphrase("GATEWAY_KEY_PASSPHRASE")
    try:
        old = load_keyring(township, keys_dir, passphrase)
    except KeyFileError as exc:
        _fail(str(exc))
    new = rotate_keyring(old)
    instant = _instant(at)
    try:
        updated = _load_directory(directory).with_rotation(new, at=instant, grace=timedelta(days=grace_days))
    except EnvelopeError as exc:
        _fail(exc.detail)
    save_keyring(new, keys_dir, passphrase)
    updated.save(directory)
    _audited(township, f"rotate, grace {grace_days} days")
    typer.echo(f"rotated {township}: {new!r}; old encryption keys decrypt until {instant + timedelta(days=grace_days):%Y-%m-%dT%H:%MZ}")


@app.command("prune")
def prune(
    township: Annotated[str, typer.Argument(metavar="TOWNSHIP")],
    keys_dir: KeysDir = DEFAULT_KEYS_DIR,
    directory: DirectoryPath = DEFAULT_DIRECTORY,
    at: AtOption = None,
) -> None:
    """Delete retired encryption keys whose grace period (not_after in the directory) has ended."""
    passphrase = _passphrase("GATEWAY_KEY_PASSPHRASE")
    keyring = load_keyring(township, keys_dir, passphrase)
    entry = _load_directory(directory).entry(township)
    instant = _instant(at)
    ended = {k.kid for k in entry.keys if k.use == "enc" and k.not_after is not None and k.not_after <= instant}
    held = {key_id(k.public_key()) for k in keyring.retired}
    save_keyring(keyring.without_retired(ended), keys_dir, passphrase)
    _audited(township, f"prune {len(ended & held)} retired")
    typer.echo(f"pruned {len(ended & held)} retired key(s) of {township}")


@app.command("revoke")
def revoke(
    township: Annotated[str, typer.Argument(metavar="TOWNSHIP")],
    kid: Annotated[str, typer.Argument(metavar="KID")],
    at: AtOption = None,
    directory: DirectoryPath = DEFAULT_DIRECTORY,
) -> None:
    """Revoke a key from --at (the earliest time it may have been compromised): messages created
    from then on with it are refused. Sign and distribute the directory at once."""
    try:
        updated = _load_directory(directory).with_revocation(township, kid, at=_instant(at))
    except (KeyError, EnvelopeError) as exc:
        _fail(str(exc))
    updated.save(directory)
    _audited(township, f"revoke {kid}")
    typer.echo(f"revoked {township} key {kid}; now run `gateway keys directory sign` and distribute the directory")


@app.command("suites")
def set_suites(
    township: Annotated[str, typer.Argument(metavar="TOWNSHIP")],
    suites: Annotated[list[str], typer.Argument(metavar="SUITE...", help=f"Best first; known: {', '.join(SUITE_ORDER)}")],
    directory: DirectoryPath = DEFAULT_DIRECTORY,
) -> None:
    """Set the suites TOWNSHIP accepts, best first."""
    try:
        updated = _load_directory(directory).with_suites(township, suites)
    except (ValueError, EnvelopeError) as exc:
        _fail(str(exc))
    updated.save(directory)
    _audited(township, f"suites {','.join(suites)}")
    typer.echo(f"{township} accepts {', '.join(suites)}")


@app.command("prefer")
def prefer(
    a: Annotated[str, typer.Argument(metavar="TOWNSHIP_A")],
    b: Annotated[str, typer.Argument(metavar="TOWNSHIP_B")],
    suite: Annotated[str | None, typer.Argument(metavar="[SUITE]", help="Omit to clear the preference.")] = None,
    directory: DirectoryPath = DEFAULT_DIRECTORY,
) -> None:
    """Configure the suite a pair of townships uses (both directions)."""
    if suite is not None and suite not in SUITES:
        _fail(f"unknown suite {suite!r}")
    _load_directory(directory).with_pair_preference(a, b, suite).save(directory)
    _audited(f"{a}-{b}", f"prefer {suite or 'default'}")
    typer.echo(f"{a} ↔ {b}: {suite or 'default negotiation'}")


@directory_app.command("sign")
def directory_sign(
    authority_key: AuthorityKey = DEFAULT_AUTHORITY,
    directory: DirectoryPath = DEFAULT_DIRECTORY,
    valid_days: Annotated[float, typer.Option("--valid-days", help="Gateways refuse the directory after this.")] = 7.0,
    at: AtOption = None,
) -> None:
    """Sign the directory with the authority key (serial + 1, issued now, expires after --valid-days)."""
    import json

    from gateway.security.authority import load_authority, sign_directory

    try:
        authority = load_authority(authority_key, _passphrase("GATEWAY_AUTHORITY_PASSPHRASE"))
    except KeyFileError as exc:
        _fail(str(exc))
    signed = sign_directory(_load_directory(directory), authority, issued_at=_instant(at), valid_for=timedelta(days=valid_days))
    tmp = directory.with_name(directory.name + ".tmp")
    tmp.write_text(json.dumps(signed, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    tmp.replace(directory)
    doc = signed["directory"]
    _audited("directory", f"signed serial {doc['serial']}")
    typer.echo(f"signed {directory}: serial {doc['serial']}, expires {doc['expires']}, by {authority.kid}")


@directory_app.command("verify")
def directory_verify(
    authority_pub: Annotated[Path, typer.Option("--authority-pub", envvar="GATEWAY_AUTHORITY_PUB", help="Authority public key file.")],
    directory: DirectoryPath = DEFAULT_DIRECTORY,
    at: AtOption = None,
) -> None:
    """Exit 0 when the directory is signed by the authority and not expired, 1 with the reason otherwise."""
    from gateway.security.authority import load_authority_public

    try:
        loaded = KeyDirectory.load(directory, authority=load_authority_public(authority_pub), now=_instant(at))
    except (EnvelopeError, KeyFileError) as exc:
        _fail(f"refused: {exc}")
    typer.echo(f"ok: serial {loaded.meta.serial}, {len(loaded.townships())} nodes, expires {loaded.meta.expires:%Y-%m-%dT%H:%MZ}")


@directory_app.command("show")
def directory_show(
    directory: DirectoryPath = DEFAULT_DIRECTORY,
    township: Annotated[str | None, typer.Argument(metavar="[TOWNSHIP]")] = None,
) -> None:
    """List nodes, their suites and keys with validity."""
    loaded = _load_directory(directory)
    for code in [township] if township else loaded.townships():
        entry = loaded.entry(code)
        typer.echo(f"{code}  suites: {', '.join(entry.suites)}")
        for k in entry.keys:
            span = f"{k.not_before or '-'} … {k.not_after or '-'}"
            revoked = f"  REVOKED {k.revoked_at}" if k.revoked_at else ""
            typer.echo(f"  {k.use} {k.alg:8s} {k.kid}  {span}{revoked}")
