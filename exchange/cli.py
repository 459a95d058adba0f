"""``corpusx``: the command line of the exchange, for operators, members and auditors.

Conventions every command keeps: ``--json`` prints machine-readable output; client commands find
the server and token from flags, then ``CORPUSX_SERVER`` / ``CORPUSX_TOKEN``, then the profile;
errors print one line to stderr and exit non-zero.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from exchange.chainkey import ChainKeyError
from exchange.client import ClientError, ExchangeClient
from exchange.errors import ExchangeError, NotMigratedError, WitnessConfigError
from exchange.keys import (
    KeyFileError,
    key_id,
    load_private_key,
    load_public_key,
    raw_public_key,
    write_new_key,
)
from exchange.logkey import LogKeyError, load_log_key
from exchange.profile import DEFAULT_SERVER, Profile, config_dir, load_profile, save_profile
from exchange.settings import Settings, SettingsError, load_settings, load_witness_settings
from exchange.witness_store import WitnessError
from ledger.audit import registration_body
from ledger.canonical import parse_json
from ledger.entry import b64encode, key_id_for
from ledger.errors import LedgerError
from ledger.note import CosignatureVerifier, Ed25519Verifier
from ledger.policy import PolicyWitness, WitnessPolicy
from ledger.proofbundle import ProofBundle, verify_proof_bundle
from licensing.errors import LicensingError

app = typer.Typer(
    help="Corpus Exchange: trade text corpora with a verifiable provenance ledger.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="The database: migrations and integrity.", no_args_is_help=True)
keys_app = typer.Typer(help="Ed25519 signing keys (kept on this machine).", no_args_is_help=True)
member_app = typer.Typer(help="Members, their roles and keys.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens of the current member.", no_args_is_help=True)
ledger_app = typer.Typer(
    help="The provenance ledger: checkpoints, entries, proofs.", no_args_is_help=True
)
audit_app = typer.Typer(help="Verify the ledger as an outside auditor.", no_args_is_help=True)
dataset_app = typer.Typer(help="Datasets and their immutable versions.", no_args_is_help=True)
catalog_app = typer.Typer(help="Search the catalogue.", no_args_is_help=True)
blobs_app = typer.Typer(help="Operator housekeeping of stored blobs.", no_args_is_help=True)
offer_app = typer.Typer(
    help="Offers of datasets under machine-readable terms.", no_args_is_help=True
)
licence_app = typer.Typer(
    help="Licences (agreements): buy, list, revoke, check.", no_args_is_help=True
)
account_app = typer.Typer(help="Accounts in exchange credits.", no_args_is_help=True)
data_app = typer.Typer(help="Licensed data: fetch files, delivery receipts.", no_args_is_help=True)
compliance_app = typer.Typer(
    help="Check a model's training data against its licences.", no_args_is_help=True
)
chain_app = typer.Typer(
    help="The EVM chain the log's checkpoints are anchored to.", no_args_is_help=True
)
witness_app = typer.Typer(
    help="Run a witness: cosign checkpoints of the logs you follow (c2sp.org/tlog-witness).",
    no_args_is_help=True,
)
for sub, name in [
    (db_app, "db"),
    (keys_app, "keys"),
    (member_app, "member"),
    (token_app, "token"),
    (ledger_app, "ledger"),
    (audit_app, "audit"),
    (dataset_app, "dataset"),
    (catalog_app, "catalog"),
    (blobs_app, "blobs"),
    (offer_app, "offer"),
    (licence_app, "licence"),
    (account_app, "account"),
    (compliance_app, "compliance"),
    (data_app, "data"),
    (chain_app, "chain"),
    (witness_app, "witness"),
]:
    app.add_typer(sub, name=name)

out = Console(soft_wrap=True)  # never wrap keys, tokens or notes: people copy them
err = Console(stderr=True, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="The exchange's data dir.")]
ServerOpt = Annotated[
    str | None, typer.Option("--server", help="Exchange URL [env CORPUSX_SERVER].")
]
TokenOpt = Annotated[str | None, typer.Option("--token", help="API token [env CORPUSX_TOKEN].")]
KeyOpt = Annotated[Path | None, typer.Option("--key", help="Private key file [env CORPUSX_KEY].")]
MemberOpt = Annotated[
    str | None, typer.Option("--member", help="Your member id [env CORPUSX_MEMBER].")
]


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


def emit(data: Any, as_json: bool, human: Callable[[], None] | None = None) -> None:
    if as_json or human is None:
        out.print_json(json.dumps(data)) if as_json else out.print(data)
    else:
        human()


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    grid = Table(title=title)
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*[str(cell) for cell in row])
    out.print(grid)


def settings_for(data_dir: Path | None) -> Settings:
    return load_settings(data_dir=data_dir)


def client_for(
    server: str | None = None,
    token: str | None = None,
    key: Path | None = None,
    member: str | None = None,
    *,
    signing: bool = False,
) -> ExchangeClient:
    profile = load_profile().merged(
        server=server, token=token, member=member, key_file=str(key) if key else None
    )
    private = load_private_key(Path(profile.key_file)) if signing and profile.key_file else None
    if signing and private is None:
        raise CliError("this command signs a statement: pass --key FILE (or run `corpusx login`)")
    if signing and not profile.member:
        raise CliError("this command signs as a member: pass --member ID (or run `corpusx login`)")
    return ExchangeClient(
        profile.server or DEFAULT_SERVER, token=profile.token, member=profile.member, key=private
    )


@contextmanager
def progress_bar(label: str, enabled: bool) -> Iterator[Callable[[int, int], None]]:
    if not enabled:
        yield lambda done, total: None
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


# -- operator: data dir, database, server ------------------------------------------------------


@app.command()
def init(
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where to create the exchange.")
    ] = Path(".corpusx"),
    origin: Annotated[str | None, typer.Option(help="Checkpoint origin of the log.")] = None,
    operator: Annotated[str, typer.Option(help="The first operator's member id.")] = "operator",
    operator_name: Annotated[
        str, typer.Option(help="The first operator's display name.")
    ] = "Exchange operator",
    operator_key: Annotated[
        Path | None, typer.Option(help="Use this private key (default: a new one).")
    ] = None,
    server_url: Annotated[str, typer.Option(help="URL saved in your profile.")] = DEFAULT_SERVER,
    as_json: JsonOpt = False,
) -> None:
    """Prepare a data dir: database, log signing key and the first operator (with a token)."""
    from exchange.setup import initialise

    settings = load_settings(data_dir=data_dir, log_origin=origin)
    if settings.resolved_log_key_file.exists():
        raise CliError(
            f"{data_dir} is already initialised (it has {settings.resolved_log_key_file})"
        )
    key_path = operator_key or config_dir() / "keys" / f"{operator}.key"
    key = load_private_key(key_path) if key_path.exists() else write_new_key(key_path)
    done = initialise(settings, operator=operator, operator_name=operator_name, operator_key=key)
    save_profile(
        Profile(
            server=server_url, token=done.token, member=operator, key_file=str(key_path.resolve())
        )
    )
    result = {
        "data_dir": str(data_dir),
        "operator": operator,
        "token": done.token,
        "key_file": str(key_path),
        "vkey": done.vkey,
        "checkpoint": done.checkpoint,
    }

    def human() -> None:
        out.print(f"[bold]Initialised[/bold] {data_dir}")
        out.print(f"operator     {operator}  (key {key_path}, saved in your profile)")
        out.print(f"token        {done.token}  (shown once)")
        out.print(f"log vkey     {done.vkey}")

    emit(result, as_json, human)


@app.command()
def serve(
    data_dir: DataDirOpt = None,
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.")] = 1,
    log_level: Annotated[
        str, typer.Option(help="uvicorn's log level: info logs every request, warning does not.")
    ] = "info",
) -> None:
    """Run the HTTP API on a prepared data dir."""
    import uvicorn

    from exchange.context import Exchange

    if data_dir is not None:
        os.environ["CORPUSX_DATA_DIR"] = str(data_dir.resolve())
    from exchange.anchoring import build_anchorer

    settings = load_settings()
    exchange = Exchange.open(settings)  # fail here, clearly, before workers start
    try:
        build_anchorer(exchange)  # chain settings and key; the chain itself may be down
    finally:
        exchange.engine.dispose()
    uvicorn.run(
        "exchange.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level=log_level,
    )


@app.command()
def demo(
    server: Annotated[str, typer.Option(help="The running exchange.")] = DEFAULT_SERVER,
    folder: Annotated[
        Path, typer.Option("--dir", help="Where the tour keeps its keys, corpus and downloads.")
    ] = Path(".corpusx/demo"),
    again: Annotated[bool, typer.Option(help="Run it even if it ran before.")] = False,
) -> None:
    """The tour: provider, model builder and auditor do their whole job, command by command."""
    from exchange.demo import DemoError, run_demo

    if (folder / "members.json").exists() and not again:
        out.print(
            f"the tour already ran: its members' keys and tokens are in {folder}/members.json "
            "(run `corpusx demo --again` to make a new round)"
        )
        return
    if again and (folder / "members.json").exists():
        raise CliError(
            f"the members of the last tour exist already: use another --dir than {folder}"
        )
    try:
        run_demo(server, folder, echo=lambda line: out.print(line, highlight=False, markup=False))
    except DemoError as exc:
        raise CliError(str(exc)) from None


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """Apply all migrations to the configured database."""
    from exchange.db import upgrade

    settings = settings_for(data_dir)
    upgrade(settings.resolved_database_url)
    emit(
        {"database": "upgraded"}, as_json, lambda: out.print("database is at the latest migration")
    )


@db_app.command("check")
def db_check(data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """Check that the ledger and the exchange's tables tell one story (e.g. after a crash).

    Reads one snapshot, so it may run while the exchange serves. Exits 0 if everything agrees,
    3 if not (each disagreement is listed)."""
    from exchange.db import check_migrated, make_engine
    from exchange.integrity import check_integrity

    settings = settings_for(data_dir)
    engine = make_engine(settings.resolved_database_url)
    try:
        check_migrated(engine)
        with progress_bar("checking", not as_json) as tick:
            tick(0, 1)
            report = check_integrity(engine)
            tick(1, 1)
    finally:
        engine.dispose()

    def human() -> None:
        if report.ok:
            out.print(
                f"[green]ok[/green] {report.size:,} entries; the log, the tables and the books "
                "agree"
            )
            return
        out.print(f"[red]{len(report.problems):,} problem(s)[/red] in {report.size:,} entries")
        table(
            "Problems",
            ["check", "detail"],
            [[p.check, p.detail] for p in report.problems[:100]],
        )

    emit(report.to_json(), as_json, human)
    if not report.ok:
        raise typer.Exit(3)


# -- keys, login -------------------------------------------------------------------------------


@keys_app.command("new")
def keys_new(
    out_file: Annotated[Path, typer.Option("--out", help="Private key file to create (0600).")],
    as_json: JsonOpt = False,
) -> None:
    """Create an Ed25519 key pair: FILE (private, 0600) and FILE.pub."""
    key = write_new_key(out_file)
    result = {
        "private_key": str(out_file),
        "public_key_file": f"{out_file}.pub",
        "public_key": b64encode(raw_public_key(key)),
        "key_id": key_id(key),
    }
    emit(
        result,
        as_json,
        lambda: out.print(
            f"key id {result['key_id']}\npublic key {result['public_key']}\n"
            f"wrote {out_file} and {out_file}.pub"
        ),
    )


@app.command()
def login(
    server: Annotated[str, typer.Option(help="Exchange URL.")],
    token: Annotated[str, typer.Option(help="Your API token.")],
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Save server, token and key file in your profile (checked against the server)."""
    with ExchangeClient(server, token=token) as client:
        me = client.me()
    if key is not None:
        mine = {k["key_id"] for k in me["keys"] if k["revoked_seq"] is None}
        if key_id(load_private_key(key)) not in mine:
            raise CliError(f"{key} is not one of {me['id']}'s live keys")
    path = save_profile(
        Profile(
            server=server,
            token=token,
            member=me["id"],
            key_file=str(key.resolve()) if key else None,
        )
    )
    emit(
        {"member": me["id"], "profile": str(path)},
        as_json,
        lambda: out.print(f"logged in as {me['id']} ({path})"),
    )


# -- members -----------------------------------------------------------------------------------


def _member_rows(members: list[dict[str, Any]]) -> None:
    table(
        "Members",
        ["id", "name", "roles", "keys", "registered at"],
        [
            [
                m["id"],
                m["name"],
                ",".join(m["roles"]),
                " ".join(
                    k["key_id"] + (" (revoked)" if k["revoked_seq"] is not None else "")
                    for k in m["keys"]
                ),
                m["registered_seq"],
            ]
            for m in members
        ],
    )


@member_app.command("register")
def member_register(
    name: Annotated[str, typer.Option(help="The new member's id (lowercase, digits, '-').")],
    role: Annotated[
        list[str], typer.Option(help="provider, buyer, auditor or operator (repeatable).")
    ],
    pubkey: Annotated[Path, typer.Option(help="The member's public key file (FILE.pub).")],
    display_name: Annotated[str | None, typer.Option(help="Human-readable name.")] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    key: KeyOpt = None,
    member: MemberOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a member (operators): records member.registered and prints its token once."""
    public = raw_public_key(load_public_key(pubkey))
    roles = sorted({r.strip() for value in role for r in value.split(",") if r.strip()})
    body = registration_body(name, public, name=display_name or name, roles=roles)
    with client_for(server, token, key, member, signing=True) as client:
        result = client.register_member(body)
    emit(
        result,
        as_json,
        lambda: out.print(
            f"registered {name} at entry {result['seq']}\ntoken {result['token']}  (shown once)"
        ),
    )


@member_app.command("show")
def member_show(
    member_id: str, server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """Show a member, its roles and keys (with history)."""
    with client_for(server, token) as client:
        result = client.get_member(member_id)
    emit(result, as_json, lambda: _member_rows([result]))


@member_app.command("list")
def member_list(server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """List members."""
    with client_for(server, token) as client:
        result = client.members()
    emit(result, as_json, lambda: _member_rows(result))


@member_app.command("add-key")
def member_add_key(
    pubkey: Annotated[Path, typer.Option(help="The new public key file.")],
    server: ServerOpt = None,
    token: TokenOpt = None,
    key: KeyOpt = None,
    member: MemberOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a signing key of your own (rotation: old keys stay valid until revoked)."""
    public = raw_public_key(load_public_key(pubkey))
    with client_for(server, token, key, member, signing=True) as client:
        target = client.member or ""
        result = client.add_key(target, registration_body(target, public))
    emit(
        result,
        as_json,
        lambda: out.print(f"added key {key_id_for(public)} to {target} at entry {result['seq']}"),
    )


@member_app.command("revoke-key")
def member_revoke_key(
    revoked: Annotated[str, typer.Argument(metavar="KEY_ID", help="The key id to revoke.")],
    reason: Annotated[str, typer.Option(help="Why (recorded on the ledger).")] = "rotated",
    of: Annotated[str | None, typer.Option("--of", help="Member to change (default: you).")] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    key: KeyOpt = None,
    member: MemberOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a signing key; what it signed before stays valid."""
    with client_for(server, token, key, member, signing=True) as client:
        target = of or client.member or ""
        result = client.revoke_key(target, {"member": target, "key_id": revoked, "reason": reason})
    emit(
        result,
        as_json,
        lambda: out.print(f"revoked key {revoked} of {target} at entry {result['seq']}"),
    )


@token_app.command("new")
def token_new(
    label: Annotated[str, typer.Option(help="A label.")] = "",
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Issue another API token for yourself (shown once)."""
    with client_for(server, token) as client:
        result = client.new_token(label)
    emit(
        result,
        as_json,
        lambda: out.print(f"token {result['token']}  (id {result['id']}, shown once)"),
    )


@token_app.command("list")
def token_list(server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """List your API tokens (never their values)."""
    with client_for(server, token) as client:
        result = client.tokens()
    emit(
        result,
        as_json,
        lambda: table(
            "Tokens",
            ["id", "label", "created", "revoked"],
            [[t["id"], t["label"], t["created_at"], t["revoked"]] for t in result],
        ),
    )


@token_app.command("revoke")
def token_revoke(
    token_id: str, server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """Revoke one of your API tokens."""
    with client_for(server, token) as client:
        client.revoke_token(token_id)
    emit({"revoked": token_id}, as_json, lambda: out.print(f"revoked token {token_id}"))


# -- ledger ------------------------------------------------------------------------------------


@ledger_app.command("vkey")
def ledger_vkey(
    data_dir: DataDirOpt = None, server: ServerOpt = None, as_json: JsonOpt = False
) -> None:
    """Print the log's verifier key: from the data dir's log key, or else from the server."""
    settings = settings_for(data_dir)
    if data_dir is not None or (server is None and settings.resolved_log_key_file.exists()):
        vkey = load_log_key(settings.resolved_log_key_file, settings.log_origin).verifier.vkey
    else:
        with client_for(server) as client:
            vkey = client.vkey()
    emit({"vkey": vkey}, as_json, lambda: out.print(vkey, highlight=False))


@ledger_app.command("checkpoint")
def ledger_checkpoint(
    issue: Annotated[
        bool, typer.Option(help="Ask the server to issue one now (operators).")
    ] = False,
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the latest signed checkpoint."""
    with client_for(server, token) as client:
        note = client.issue_checkpoint() if issue else client.checkpoint()
    emit({"checkpoint": note}, as_json, lambda: out.print(note, end="", highlight=False))


@ledger_app.command("entry")
def ledger_entry(
    seq: int,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the entry's exact bytes here.")
    ] = None,
    server: ServerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one entry (and optionally save its canonical bytes, for verify-proof)."""
    with client_for(server) as client:
        result = client.entry(seq)
    if out_file is not None:
        import base64

        out_file.write_bytes(base64.b64decode(result["canonical"]))
    emit(result, as_json, lambda: out.print_json(json.dumps(result["entry"])))


@ledger_app.command("attest")
def ledger_attest(
    entry_type: Annotated[str, typer.Option("--type", help="attest.NAME")],
    body: Annotated[str, typer.Option(help="JSON object, or @FILE.")],
    server: ServerOpt = None,
    token: TokenOpt = None,
    key: KeyOpt = None,
    member: MemberOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record your own signed statement (e.g. an evaluation report) on the ledger."""
    text = Path(body[1:]).read_text() if body.startswith("@") else body
    value = parse_json(text, what="--body")
    if not isinstance(value, dict):
        raise CliError("--body must be a JSON object")
    with client_for(server, token, key, member, signing=True) as client:
        result = client.attest(entry_type, value)
    emit(result, as_json, lambda: out.print(f"recorded {entry_type} as entry {result['seq']}"))


@ledger_app.command("prove")
def ledger_prove(
    seq: int,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Bundle file (default: stdout).")
    ] = None,
    entry_out: Annotated[
        Path | None, typer.Option("--entry-out", help="Also save the entry bytes.")
    ] = None,
    server: ServerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write an offline c2sp tlog-proof@v1 bundle for entry SEQ."""
    import base64

    with client_for(server) as client:
        bundle = client.proof_bundle(seq)
        if entry_out is not None:
            entry_out.write_bytes(base64.b64decode(client.entry(seq)["canonical"]))
    if out_file is not None:
        out_file.write_text(bundle)
    result = {"seq": seq, "bundle": bundle, "file": str(out_file) if out_file else None}
    emit(
        result,
        as_json,
        lambda: (
            out.print(f"wrote {out_file}")
            if out_file
            else out.print(bundle, end="", highlight=False)
        ),
    )


def _anchor_rows(status: dict[str, Any]) -> None:
    if not status["enabled"]:
        out.print("anchoring is off on this exchange")
        return
    health = (
        "ok"
        if not status["failures"]
        else (
            f"{status['failures']} failed attempt(s), retrying in {status['retry_in']:.0f}s: "
            f"{status['last_error']}"
        )
    )
    table(
        f"Anchors on {status['contract']} ({health})",
        ["size", "state", "tx", "block", "depth", "resent", "entry"],
        [
            [
                a["size"],
                a["state"],
                a["tx_hash"],
                a["block_number"] if a["block_number"] is not None else "-",
                a["depth"],
                a["resubmissions"],
                a["entry_seq"] if a["entry_seq"] is not None else "-",
            ]
            for a in status["anchors"]
        ],
    )


@ledger_app.command("anchors")
def ledger_anchors(server: ServerOpt = None, as_json: JsonOpt = False) -> None:
    """Show the latest anchors of the log's checkpoints on the chain, and their state."""
    with client_for(server) as client:
        result = client.anchors()
    emit(result, as_json, lambda: _anchor_rows(result))


@ledger_app.command("anchor")
def ledger_anchor(
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait until the anchor is final (and recorded).")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 600.0,
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Anchor the current log on the chain now (operators), instead of waiting for the schedule."""
    import time

    with client_for(server, token) as client:
        result = client.anchor_now()
        deadline = time.monotonic() + timeout
        while wait and not _settled(result):
            if time.monotonic() > deadline:
                raise CliError(f"the anchor is not final after {timeout:.0f}s")
            time.sleep(0.5)
            result = client.anchors()
    anchor = None if result["requested"] or not result["anchors"] else result["anchors"][0]

    def human() -> None:
        if anchor is None:
            out.print("anchoring requested: it is sent once the anchor before it is included")
            return
        out.print(
            f"size {anchor['size']}: {anchor['state']}, tx {anchor['tx_hash']}"
            + (
                f", recorded as entry {anchor['entry_seq']}"
                if anchor["entry_seq"] is not None
                else ""
            )
        )

    emit({**result, "anchor": anchor}, as_json, human)


def _settled(status: dict[str, Any]) -> bool:
    """The request was served and the anchor it led to (the newest) is final."""
    anchors = status["anchors"]
    return not status["requested"] and bool(anchors) and anchors[0]["state"] == "final"


# -- chain -------------------------------------------------------------------------------------

RpcOpt = Annotated[
    str,
    typer.Option("--rpc", envvar="CORPUSX_CHAIN_RPC_URL", help="The chain's JSON-RPC URL."),
]


@chain_app.command("new-key")
def chain_new_key(
    out_file: Annotated[Path, typer.Option("--out", help="Key file to create (mode 0600).")],
    as_json: JsonOpt = False,
) -> None:
    """Create an account key for anchoring; fund its address, then `corpusx chain deploy`."""
    from exchange.chainkey import write_chain_key
    from ledger.anchor_evm import account_address

    address = account_address(write_chain_key(out_file))
    emit(
        {"key_file": str(out_file), "address": address},
        as_json,
        lambda: out.print(f"wrote {out_file} (mode 0600); account address {address}"),
    )


@chain_app.command("deploy")
def chain_deploy(
    rpc: RpcOpt,
    key: Annotated[Path, typer.Option("--key", help="The account's key file (mode 0600).")],
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Save the contract in this data dir's chain.json."),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace a contract already saved there.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Deploy the CheckpointAnchor contract, owned by the key's account, and say where it is."""
    from exchange.chainkey import load_chain_key
    from ledger.anchor import contract_artifact
    from ledger.anchor_evm import EvmChain

    target = settings_for(data_dir).chain_config_file if data_dir is not None else None
    if target is not None and target.exists() and not replace:
        raise CliError(f"{target} already names a contract; pass --replace to deploy a new one")
    chain = EvmChain(rpc, private_key=load_chain_key(key))
    done = chain.deploy(contract_artifact().bytecode)
    saved = {
        "rpc_url": rpc,
        "chain_id": done.chain_id,
        "contract": done.contract,
        "owner": chain.address,
        "deploy_tx": done.tx_hash,
        "block": done.block_number,
    }
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(saved, indent=2) + "\n")

    def human() -> None:
        out.print(
            f"deployed CheckpointAnchor on chain {done.chain_id} in block {done.block_number} "
            f"(tx {done.tx_hash})" + (f"; saved in {target}" if target else ""),
            highlight=False,
        )
        out.print(f"CORPUSX_CHAIN_RPC_URL={rpc}", highlight=False)
        out.print(f"CORPUSX_CHAIN_CONTRACT={done.contract}", highlight=False)

    emit({**saved, "file": str(target) if target else None}, as_json, human)


# -- datasets ----------------------------------------------------------------------------------


def _human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:,.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{size} B"


@dataset_app.command("publish")
def dataset_publish(
    path: Annotated[
        list[Path], typer.Argument(help="A folder, or files (Parquet, JSONL, .txt; .gz/.zst).")
    ],
    dataset: Annotated[str, typer.Option("--dataset", help="The dataset's slug.")],
    title: Annotated[
        str | None, typer.Option(help="Title (first publish: defaults to the slug).")
    ] = None,
    label: Annotated[
        str | None, typer.Option("--version", help="Version label (default: v<N>).")
    ] = None,
    card: Annotated[Path | None, typer.Option(help="A Markdown dataset card.")] = None,
    description: Annotated[str | None, typer.Option(help="A short description.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="A tag (repeatable).")] = None,
    language: Annotated[
        list[str] | None, typer.Option(help="A language code (repeatable).")
    ] = None,
    domain: Annotated[list[str] | None, typer.Option(help="A domain (repeatable).")] = None,
    text_field: Annotated[
        str, typer.Option(help="Parquet column / JSONL field with the text.")
    ] = "text",
    workers: Annotated[int, typer.Option(help="Processes hashing files in parallel.")] = 2,
    derived_from: Annotated[
        list[str] | None,
        typer.Option(
            "--derived-from",
            help="A source version, as VERSION or VERSION=AGREEMENT (repeatable): "
            "the version is derived from it under that licence.",
        ),
    ] = None,
    method: Annotated[
        str | None, typer.Option(help="How it was derived: filtered, deduplicated, merged.")
    ] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    key: KeyOpt = None,
    member: MemberOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest a corpus, upload what the exchange lacks, and publish a signed, immutable version."""
    from catalog.documents import IngestOptions
    from exchange.publisher import publish_corpus

    meta = {
        "title": title,
        "description": description,
        "card": card.read_text(encoding="utf-8") if card else None,
        "tags": tag,
        "languages": language,
        "domains": domain,
    }
    with (
        _two_bars(enabled=not as_json) as hooks,
        client_for(server, token, key, member, signing=True) as client,
    ):
        done = publish_corpus(
            client,
            path,
            slug=dataset,
            label=label,
            meta=meta,
            workers=workers,
            options=IngestOptions(text_field=text_field),
            progress=hooks,
            lineage=_declared_lineage(derived_from, method),
        )
    manifest, result = done.manifest, done.version
    emit(
        result,
        as_json,
        lambda: out.print(
            f"published {dataset} {done.label}: {result['id']}\n"
            f"{len(manifest.files)} file(s), {manifest.records:,} documents, "
            f"{_human_size(manifest.size)}; {done.uploaded} uploaded, "
            f"{done.already_stored} already stored; ledger entry {result['published_seq']}",
            highlight=False,
        ),
    )


def _declared_lineage(derived_from: list[str] | None, method: str | None) -> Any:
    from exchange.published import Declared

    if not derived_from:
        if method is not None:
            raise CliError("--method describes a derivation: name its sources with --derived-from")
        return None
    if method is None:
        raise CliError("a derived version needs --method (filtered, deduplicated, merged, ...)")
    sources = []
    for value in derived_from:
        version, _, agreement = value.partition("=")
        sources.append({"version": version, "agreement": agreement or None})
    return Declared.from_json(method, sources)


@contextmanager
def _two_bars(*, enabled: bool) -> Iterator[Any]:
    """Progress for publishing: one bar while hashing, one while uploading (bytes)."""
    from rich.progress import DownloadColumn, TransferSpeedColumn

    from exchange.publisher import PublishProgress

    if not enabled:
        yield PublishProgress()
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        hashing = bar.add_task("hashing", total=None, visible=False)
        upload = bar.add_task("uploading", total=None, visible=False)
        yield PublishProgress(
            started_hashing=lambda total: bar.update(hashing, total=total, visible=True),
            hashed=lambda p: bar.update(hashing, completed=p.bytes_done),
            started_upload=lambda total: bar.update(upload, total=total, visible=total > 0),
            uploaded=lambda n: bar.advance(upload, n),
        )


@dataset_app.command("show")
def dataset_show(
    slug: str, server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """A dataset: its description, labels and versions."""
    with client_for(server, token) as client:
        result = client.dataset(slug)

    def human() -> None:
        out.print(f"[bold]{result['title']}[/bold] ({result['slug']}) by {result['provider']}")
        if result["description"]:
            out.print(result["description"])
        for kind in ("languages", "domains", "tags"):
            out.print(f"{kind}: {', '.join(result[kind]) or '-'}")
        table(
            "Versions",
            ["label", "id", "documents", "size", "status", "entry"],
            [
                [
                    v["label"],
                    v["id"],
                    f"{v['records']:,}",
                    _human_size(v["size"]),
                    v["status"],
                    v["published_seq"],
                ]
                for v in result["versions"]
            ],
        )

    emit(result, as_json, human)


@dataset_app.command("diff")
def dataset_diff(
    old: Annotated[str, typer.Argument(help="Version id (sha256:...).")],
    new: Annotated[str, typer.Argument(help="Version id (sha256:...).")],
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Files and document counts added, removed and changed between two versions."""
    from catalog.manifest import VersionManifest, diff

    with client_for(server, token) as client:
        manifests = [VersionManifest.from_bytes(client.manifest_bytes(v)) for v in (old, new)]
    changes = diff(manifests[0], manifests[1])
    rows: list[dict[str, Any]] = (
        [
            {"change": "added", "file": f.name, "before": None, "after": f.records}
            for f in changes.added
        ]
        + [
            {"change": "removed", "file": f.name, "before": f.records, "after": None}
            for f in changes.removed
        ]
        + [
            {"change": "changed", "file": c.name, "before": c.old.records, "after": c.new.records}
            for c in changes.changed
        ]
        + [
            {
                "change": "renamed",
                "file": f"{a.name} -> {b.name}",
                "before": a.records,
                "after": b.records,
            }
            for a, b in changes.renamed
        ]
    )
    result = {
        "old": old,
        "new": new,
        "files": rows,
        "documents_added": changes.records_added,
        "documents_removed": changes.records_removed,
        "unchanged_files": len(changes.unchanged),
    }
    emit(
        result,
        as_json,
        lambda: table(
            f"{old[:19]}… → {new[:19]}…: +{changes.records_added:,} / "
            f"-{changes.records_removed:,} documents, "
            f"{len(changes.unchanged)} file(s) unchanged",
            ["change", "file", "documents before", "documents after"],
            [
                [
                    r["change"],
                    r["file"],
                    "-" if r["before"] is None else f"{r['before']:,}",
                    "-" if r["after"] is None else f"{r['after']:,}",
                ]
                for r in rows
            ],
        ),
    )


@dataset_app.command("prove-document")
def dataset_prove_document(
    version: Annotated[str, typer.Argument(help="Version id (sha256:...).")],
    file: Annotated[str, typer.Option("--file", help="The file's name in the version.")],
    record: Annotated[
        int | None, typer.Option(help="The record's index in the file (from 0).")
    ] = None,
    document: Annotated[str | None, typer.Option(help="Or: the document's SHA-256.")] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Bundle file (default: stdout).")
    ] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a bundle proving one document belongs to a version, down to its ledger entry."""
    if (record is None) == (document is None):
        raise CliError("give exactly one of --record and --document")
    with client_for(server, token) as client:
        bundle = client.document_proof(version, file=file, record=record, document=document)
    text = json.dumps(bundle, indent=2) + "\n"
    if out_file is None:
        emit(bundle, as_json, lambda: out.print(text, end="", highlight=False))
        return
    out_file.write_text(text)
    summary = {
        "version": version,
        "file": file,
        "record": bundle["record"],
        "document_sha256": bundle["document_sha256"],
        "out": str(out_file),
    }
    emit(
        summary,
        as_json,
        lambda: out.print(
            f"wrote {out_file}: record {bundle['record']} of {file} "
            f"(sha256 {bundle['document_sha256']})"
        ),
    )


@dataset_app.command("croissant")
def dataset_croissant(
    version: Annotated[str, typer.Argument(help="Version id (sha256:...).")],
    out_file: Annotated[Path | None, typer.Option("--out", help="Write to a file.")] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print a version's Croissant 1.1 metadata (JSON-LD)."""
    with client_for(server, token) as client:
        document = client.croissant(version)
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if out_file is not None:
        out_file.write_text(text, encoding="utf-8")
        emit({"out": str(out_file)}, as_json, lambda: out.print(f"wrote {out_file}"))
        return
    sys.stdout.write(text)


@blobs_app.command("unreferenced")
def blobs_unreferenced(
    data_dir: DataDirOpt = None,
    min_age: Annotated[float, typer.Option(help="Only blobs at least this old (seconds).")] = 3600,
    delete: Annotated[
        bool, typer.Option("--delete", help="Delete them (default: report).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Blobs no version names (left by failed publishes): report, or delete with --delete."""
    from exchange.context import Exchange
    from exchange.maintenance import delete_blobs, unreferenced_blobs

    exchange = Exchange.open(settings_for(data_dir))
    try:
        found = unreferenced_blobs(exchange, min_age_seconds=min_age)
        deleted = delete_blobs(exchange, found) if delete else 0
    finally:
        exchange.engine.dispose()
    total = sum(b.size for b in found)
    result = {"unreferenced": [b.digest for b in found], "bytes": total, "deleted": deleted}
    emit(
        result,
        as_json,
        lambda: out.print(
            f"{len(found)} unreferenced blob(s), {_human_size(total)}"
            + (f"; deleted {deleted}" if delete else " (use --delete to remove them)")
        ),
    )


@dataset_app.command("overlap")
def dataset_overlap(
    version: Annotated[str, typer.Argument(help="Version id (sha256:...).")],
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The overlap report made when the version was published (why it may be flagged)."""
    with client_for(server, token) as client:
        shown = client.version(version)
    report = shown["stats"].get("overlap", {})
    result = {"version": version, "status": shown["status"], "report": report}
    emit(
        result,
        as_json,
        lambda: table(
            f"{version[:23]}… is {shown['status']}: overlaps with other providers' versions",
            ["version", "provider", "dataset", "exact shared", "near-duplicate (est.)", "verdict"],
            [
                [
                    o["version"],
                    o["provider"],
                    o["dataset"],
                    f"{o['exact']['fraction']:.1%}",
                    f"{o['near']['fraction']:.1%}",
                    "; ".join(o["reasons"]) or "-",
                ]
                for o in report.get("overlaps", [])
            ],
        ),
    )


@dataset_app.command("clear")
def dataset_clear(
    version: Annotated[str, typer.Argument(help="Version id (sha256:...).")],
    reason: Annotated[str, typer.Option(help="Why the overlap is acceptable (on the ledger).")],
    server: ServerOpt = None,
    token: TokenOpt = None,
    key: KeyOpt = None,
    member: MemberOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Release a version held for overlap (operators)."""
    with client_for(server, token, key, member, signing=True) as client:
        result = client.clear_version(version, reason)
    emit(result, as_json, lambda: out.print(f"{version} is {result['status']}"))


# -- catalogue -----------------------------------------------------------------------------------


@catalog_app.command("search")
def catalog_search(
    query: Annotated[str, typer.Argument(help="Words to look for.")] = "",
    language: Annotated[
        list[str] | None, typer.Option(help="Filter: language (repeatable).")
    ] = None,
    domain: Annotated[list[str] | None, typer.Option(help="Filter: domain (repeatable).")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Filter: tag (repeatable).")] = None,
    provider: Annotated[str | None, typer.Option(help="Filter: provider id.")] = None,
    min_bytes: Annotated[int | None, typer.Option(help="Filter: at least this many bytes.")] = None,
    max_bytes: Annotated[int | None, typer.Option(help="Filter: at most this many bytes.")] = None,
    page: Annotated[int, typer.Option(help="Page number.")] = 1,
    per_page: Annotated[int, typer.Option(help="Results per page.")] = 20,
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search datasets by text, with filters and pages."""
    with client_for(server, token) as client:
        result = client.search(
            q=query,
            language=language,
            domain=domain,
            tag=tag,
            provider=provider,
            min_bytes=min_bytes,
            max_bytes=max_bytes,
            page=page,
            per_page=per_page,
        )
    emit(
        result,
        as_json,
        lambda: table(
            f"{result['total']:,} dataset(s), page {result['page']}",
            ["slug", "title", "provider", "languages", "size", "documents"],
            [
                [
                    d["slug"],
                    d["title"],
                    d["provider"],
                    ",".join(d["languages"]),
                    _human_size(d["size_bytes"]),
                    f"{d['record_count']:,}",
                ]
                for d in result["datasets"]
            ],
        ),
    )


# -- offers, licences, accounts ----------------------------------------------------------------


def _terms_from_options(
    *,
    terms_file: Path | None,
    licence: str | None,
    purpose: list[str] | None,
    commercial: bool,
    derivatives: bool,
    redistribution: bool,
    share_alike: bool,
    territory: list[str] | None,
    days: int | None,
    attribution: list[str] | None,
) -> Any:
    """Terms from a file (Terms JSON or ODRL JSON-LD), from a well-known licence, or from flags."""
    from licensing.classes import classify, terms_for
    from licensing.odrl import from_jsonld
    from licensing.terms import PURPOSES, Terms

    chosen = [terms_file is not None, licence is not None]
    if sum(chosen) > 1:
        raise CliError("give terms one way: --terms FILE, or --licence, or the flags")
    if terms_file is not None:
        value = parse_json(_read_text(terms_file), what=str(terms_file))
        if isinstance(value, dict) and ("@context" in value or "@type" in value):
            return from_jsonld(value).terms
        return Terms.from_json(value)
    if licence is not None:
        notice = attribution[0] if attribution else None
        return terms_for(classify(licence), licence=licence, notice=notice)
    return Terms(
        purposes=frozenset(purpose or PURPOSES),
        commercial=commercial,
        derivation=derivatives or share_alike,
        redistribution=redistribution,
        territories=frozenset(t.upper() for t in territory) if territory else None,
        duration_days=days,
        attribution=tuple(attribution or ()),
        share_alike=share_alike,
    )


def _offer_rows(offers: list[dict[str, Any]]) -> None:
    from licensing.terms import Terms, describe

    table(
        "Offers",
        ["id", "dataset", "version", "price", "terms", "buyer", "status"],
        [
            [
                o["id"],
                o["dataset"],
                (o["version"] or "any")[:19],
                f"{o['price']['amount']:,}",
                describe(Terms.from_json(o["terms"])),
                o["buyer"] or "public",
                ("open" if o["open"] else "closed") if o["status"] == "open" else o["status"],
            ]
            for o in offers
        ],
    )


@offer_app.command("create")
def offer_create(
    dataset: Annotated[str, typer.Option("--dataset", help="The dataset's slug.")],
    price: Annotated[int, typer.Option(help="Price in exchange credits.", min=0)],
    version: Annotated[
        str | None, typer.Option("--version", help="Offer one version (default: any version).")
    ] = None,
    terms_file: Annotated[
        Path | None, typer.Option("--terms", help="Terms JSON or ODRL JSON-LD file.")
    ] = None,
    licence: Annotated[
        str | None, typer.Option(help="A well-known licence (SPDX expression) to offer under.")
    ] = None,
    purpose: Annotated[
        list[str] | None,
        typer.Option(help="training, fine-tuning, evaluation, research (repeatable; default all)."),
    ] = None,
    commercial: Annotated[bool, typer.Option(help="Permit commercial use.")] = False,
    derivatives: Annotated[bool, typer.Option(help="Permit derived versions.")] = False,
    redistribution: Annotated[bool, typer.Option(help="Permit redistribution.")] = False,
    share_alike: Annotated[bool, typer.Option(help="Derivatives keep these terms.")] = False,
    territory: Annotated[
        list[str] | None, typer.Option(help="ISO 3166 country code (repeatable; default anywhere).")
    ] = None,
    days: Annotated[int | None, typer.Option(help="Each licence lasts this many days.")] = None,
    attribution: Annotated[
        list[str] | None, typer.Option(help="A notice licensees must reproduce (repeatable).")
    ] = None,
    open_days: Annotated[
        float | None, typer.Option(help="Accept purchases for this many days (default: no end).")
    ] = None,
    buyer: Annotated[str | None, typer.Option(help="A private offer to this buyer.")] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    key: KeyOpt = None,
    member: MemberOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Offer a dataset (or one version) under machine-readable terms, signed by you."""
    from datetime import UTC, datetime, timedelta

    from licensing.terms import Price

    terms = _terms_from_options(
        terms_file=terms_file,
        licence=licence,
        purpose=purpose,
        commercial=commercial,
        derivatives=derivatives,
        redistribution=redistribution,
        share_alike=share_alike,
        territory=territory,
        days=days,
        attribution=attribution,
    )
    until = datetime.now(UTC) + timedelta(days=open_days) if open_days else None
    with client_for(server, token, key, member, signing=True) as client:
        result = client.publish_offer(
            dataset=dataset,
            version=version,
            terms=terms,
            price=Price(price),
            valid_until=until,
            buyer=buyer,
        )
    emit(
        result,
        as_json,
        lambda: out.print(
            f"offer {result['id']} for {dataset} at {price:,} credits "
            f"(ledger entry {result['published_seq']})",
            highlight=False,
        ),
    )


@offer_app.command("list")
def offer_list(
    dataset: Annotated[str | None, typer.Option("--dataset", help="Only this dataset.")] = None,
    version: Annotated[str | None, typer.Option("--version", help="Only offers of it.")] = None,
    all_offers: Annotated[
        bool, typer.Option("--all", help="Include withdrawn and expired offers.")
    ] = False,
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Offers you can accept (and your own)."""
    with client_for(server, token) as client:
        result = client.offers(dataset=dataset, version=version, include_closed=all_offers)
    emit(result, as_json, lambda: _offer_rows(result))


@offer_app.command("show")
def offer_show(
    offer_id: str,
    odrl: Annotated[bool, typer.Option("--odrl", help="Print it as ODRL JSON-LD.")] = False,
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One offer: its terms, price and status."""
    with client_for(server, token) as client:
        result = client.odrl("offers", offer_id) if odrl else client.offer(offer_id)
    if odrl:
        sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        return
    emit(result, as_json, lambda: _offer_rows([result]))


@offer_app.command("withdraw")
def offer_withdraw(
    offer_id: str,
    reason: Annotated[str, typer.Option(help="Why (recorded on the ledger).")],
    server: ServerOpt = None,
    token: TokenOpt = None,
    key: KeyOpt = None,
    member: MemberOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Withdraw your offer: no new licences; existing ones stand."""
    with client_for(server, token, key, member, signing=True) as client:
        result = client.withdraw_offer(offer_id, reason)
    emit(result, as_json, lambda: out.print(f"withdrew offer {offer_id}"))


def _licence_rows(agreements: list[dict[str, Any]]) -> None:
    from licensing.terms import Terms, describe

    table(
        "Licences",
        ["id", "version", "from", "to", "price", "terms", "until", "state"],
        [
            [
                a["id"],
                a["target"][:19] + "…",
                a["assigner"],
                a["assignee"],
                f"{a['price']['amount']:,}",
                describe(Terms.from_json(a["terms"])),
                a["valid_until"] or "-",
                a["state"],
            ]
            for a in agreements
        ],
    )


@licence_app.command("buy")
def licence_buy(
    offer_id: str,
    version: Annotated[
        str | None, typer.Option("--version", help="The exact version (default: the offer's).")
    ] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    key: KeyOpt = None,
    member: MemberOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Accept an offer for one exact version: you sign the agreement and pay its price."""
    with client_for(server, token, key, member, signing=True) as client:
        result = client.buy(offer_id, version=version)
    emit(
        result,
        as_json,
        lambda: out.print(
            f"licence {result['id']} for {result['target']} "
            f"({result['price']['amount']:,} credits; ledger entry {result['granted_seq']})",
            highlight=False,
        ),
    )


@licence_app.command("list")
def licence_list(
    of: Annotated[
        str | None, typer.Option("--of", help="Another member's (operators, auditors).")
    ] = None,
    version: Annotated[str | None, typer.Option("--version", help="Only this version.")] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Your licences, as buyer and as provider."""
    with client_for(server, token) as client:
        result = client.licences(member=of, version=version)
    emit(result, as_json, lambda: _licence_rows(result))


@licence_app.command("show")
def licence_show(
    agreement_id: str,
    odrl: Annotated[bool, typer.Option("--odrl", help="Print it as ODRL JSON-LD.")] = False,
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One licence (agreement): parties, version, terms, validity."""
    with client_for(server, token) as client:
        result = client.odrl("licences", agreement_id) if odrl else client.licence(agreement_id)
    if odrl:
        sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        return
    emit(result, as_json, lambda: _licence_rows([result]))


@licence_app.command("revoke")
def licence_revoke(
    agreement_id: str,
    reason: Annotated[str, typer.Option(help="The cause (recorded on the ledger).")],
    server: ServerOpt = None,
    token: TokenOpt = None,
    key: KeyOpt = None,
    member: MemberOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a licence you granted, for cause (uses before now stay permitted)."""
    with client_for(server, token, key, member, signing=True) as client:
        result = client.revoke_licence(agreement_id, reason)
    emit(result, as_json, lambda: out.print(f"revoked {agreement_id} at {result['revoked_at']}"))


@licence_app.command("check")
def licence_check(
    version: Annotated[str, typer.Argument(help="Version id (sha256:...).")],
    purpose: Annotated[str, typer.Option(help="training, fine-tuning, evaluation, research.")],
    of: Annotated[str | None, typer.Option("--of", help="The member (default: you).")] = None,
    commercial: Annotated[bool, typer.Option(help="A commercial use.")] = False,
    territory: Annotated[str | None, typer.Option(help="Where (ISO 3166 code).")] = None,
    at: Annotated[str | None, typer.Option(help="When (RFC 3339 UTC ms, default now).")] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    member: MemberOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """May a member use a version for a purpose now (or then)? Permit or deny, with reasons.

    Exits 0 on permit, 3 on deny (scripts can branch on it)."""
    with client_for(server, token, member=member) as client:
        subject = of or client.require_member()
        result = client.may(
            member=subject,
            version=version,
            purpose=purpose,
            commercial=commercial,
            territory=territory,
            at=at,
        )

    def human() -> None:
        verdict = "[green]permit[/green]" if result["permitted"] else "[red]deny[/red]"
        out.print(f"{verdict} {subject} {purpose} on {version}")
        for reason in result["reasons"]:
            out.print(f"  {reason['code']}: {reason['message']}", highlight=False)

    emit(result, as_json, human)
    if not result["permitted"]:
        raise typer.Exit(3)


@account_app.command("show")
def account_show(
    member_id: Annotated[str | None, typer.Argument(help="Member (default: you).")] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    member: MemberOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A balance in exchange credits and its recent postings."""
    with client_for(server, token, member=member) as client:
        result = client.account(member_id or client.require_member())

    def human() -> None:
        out.print(f"{result['member']}: {result['balance']:,} credits")
        table(
            "Postings",
            ["entry", "kind", "reference", "amount", "time"],
            [
                [p["seq"], p["kind"], p["reference"], f"{p['amount']:+,}", p["time"]]
                for p in result["history"]
            ],
        )

    emit(result, as_json, human)


@account_app.command("books")
def account_books(
    server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """Every balance, and the books' checks: sum zero, balanced postings (operators, auditors)."""
    with client_for(server, token) as client:
        result = client.books()
    ok = (
        result["total"] == 0
        and result["unbalanced_transactions"] == 0
        and not result["drifted_accounts"]
    )

    def human() -> None:
        table(
            "Accounts",
            ["account", "balance"],
            [[k, f"{v:,}"] for k, v in result["accounts"].items()],
        )
        out.print(
            ("[green]balanced[/green]" if ok else "[red]NOT balanced[/red]")
            + f": total {result['total']}, {result['unbalanced_transactions']} unbalanced "
            f"transaction(s), drifted: {', '.join(result['drifted_accounts']) or 'none'}"
        )

    emit(result, as_json, human)
    if not ok:
        raise typer.Exit(1)


def _cash_command(kind: str) -> Callable[..., None]:
    def command(
        member_id: Annotated[str, typer.Argument(help="The member.")],
        amount: Annotated[int, typer.Argument(help="Credits.", min=1)],
        reference: Annotated[str, typer.Option(help="Your reference (e.g. a bank transfer).")],
        server: ServerOpt = None,
        token: TokenOpt = None,
        key: KeyOpt = None,
        member: MemberOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        with client_for(server, token, key, member, signing=True) as client:
            move = client.deposit if kind == "deposit" else client.withdraw
            result = move(member_id, amount, reference)
        emit(
            result,
            as_json,
            lambda: out.print(
                f"{kind} of {amount:,} credits for {member_id}: balance {result['balance']:,} "
                f"(ledger entry {result['seq']})"
            ),
        )

    command.__doc__ = (
        "Credit a member's account (operators)."
        if kind == "deposit"
        else "Debit a member's account (operators; no overdraft)."
    )
    return command


account_app.command("deposit")(_cash_command("deposit"))
account_app.command("withdraw")(_cash_command("withdraw"))


# -- compliance and lineage --------------------------------------------------------------------


def _manifest(path: Path) -> dict[str, Any]:
    value = parse_json(_read_text(path), what=str(path))
    if not isinstance(value, dict):
        raise CliError(f"{path} must hold a JSON object (a training manifest)")
    return value


@compliance_app.command("check")
def compliance_check(
    manifest_file: Annotated[Path, typer.Argument(metavar="MANIFEST", help="Training manifest.")],
    of: Annotated[
        str | None, typer.Option("--of", help="Another member's (operators, auditors).")
    ] = None,
    attest: Annotated[
        bool, typer.Option(help="If compliant, record a signed model.training.attested entry.")
    ] = False,
    spdx: Annotated[
        Path | None, typer.Option(help="Also write the SPDX 3.0 AI package here.")
    ] = None,
    report_out: Annotated[Path | None, typer.Option("--out", help="Write the report here.")] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    key: KeyOpt = None,
    member: MemberOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a model's training data against its licences: one verdict per item.

    Exits 0 if every item is covered, 3 if not."""
    manifest = _manifest(manifest_file)
    with client_for(server, token, key, member, signing=attest) as client:
        with progress_bar("checking", not as_json) as tick:
            tick(0, 1)
            report = client.compliance_check(manifest, member=of)
            tick(1, 1)
        attested = None
        if attest and report["compliant"]:
            attested = client.attest_training(manifest)
            report = attested["report"]
        if spdx is not None:
            spdx.write_text(
                json.dumps(client.compliance_spdx(manifest, member=of), indent=2) + "\n"
            )
    if report_out is not None:
        report_out.write_text(json.dumps(report, indent=2) + "\n")
    result = {**report, "attestation_seq": attested["seq"] if attested else None}

    def human() -> None:
        counts = ", ".join(f"{n:,} {status}" for status, n in sorted(report["counts"].items()))
        verdict = "[green]compliant[/green]" if report["compliant"] else "[red]NOT compliant[/red]"
        out.print(f"{verdict} {report['model']}: {counts}")
        problems = [v for v in report["items"] if v["status"] != "covered"]
        if problems:
            table(
                f"Not covered ({len(problems):,})",
                ["item", "status", "why"],
                [
                    [
                        " ".join(f"{k} {x[:23]}" for k, x in v["item"].items()),
                        v["status"],
                        v["reason"],
                    ]
                    for v in problems[:50]
                ],
            )
        if attested:
            out.print(f"attested as ledger entry {attested['seq']}")
        elif attest:
            out.print("not attested: the data is not covered")

    emit(result, as_json, human)
    if not report["compliant"]:
        raise typer.Exit(3)


@compliance_app.command("bundle")
def compliance_bundle(
    seq: Annotated[int, typer.Argument(help="The model.training.attested entry.")],
    out_file: Annotated[Path, typer.Option("--out", help="Bundle file to write.")],
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fetch the offline bundle of a training attestation (for audit verify-attestation)."""
    with client_for(server, token) as client:
        bundle = client.attestation_bundle(seq)
    out_file.write_text(json.dumps(bundle, indent=2) + "\n")
    emit({"out": str(out_file), "seq": seq}, as_json, lambda: out.print(f"wrote {out_file}"))


@dataset_app.command("lineage")
def dataset_lineage(
    version: Annotated[str, typer.Argument(help="Version id (sha256:...).")],
    prov: Annotated[
        str | None, typer.Option(help="Print W3C PROV: 'turtle' (PROV-O) or 'json' (PROV-JSON).")
    ] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A version's sources, the terms it inherits, and the versions derived from it."""
    with client_for(server, token) as client:
        if prov is not None:
            if prov not in ("turtle", "json"):
                raise CliError("--prov is 'turtle' or 'json'")
            sys.stdout.write(client.lineage_prov(version, prov))
            return
        result = client.lineage(version)

    def human() -> None:
        from licensing.terms import Terms, describe

        out.print(f"{version}: {result['method'] or 'not derived'}")
        for source in result["sources"]:
            out.print(f"  from {source['version']} under {source['agreement'] or 'own rights'}")
        if result["inherited_terms"]:
            out.print(f"  inherits: {describe(Terms.from_json(result['inherited_terms']))}")
        for derived in result["derived"]:
            out.print(f"  derived into {derived}")

    emit(result, as_json, human)


# -- delivery ----------------------------------------------------------------------------------


@data_app.command("fetch")
def data_fetch(
    version: Annotated[str, typer.Argument(help="The licensed version id (sha256:...).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to download into.")],
    purpose: Annotated[
        str, typer.Option(help="What for: training, fine-tuning, evaluation, research.")
    ] = "training",
    commercial: Annotated[bool, typer.Option(help="A commercial use.")] = False,
    territory: Annotated[str | None, typer.Option(help="Where (ISO 3166 code).")] = None,
    file: Annotated[
        list[str] | None, typer.Option("--file", help="Only this file (repeatable).")
    ] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Download the files of a version you hold a licence for; resumable; every file verified."""
    from rich.progress import DownloadColumn, TransferSpeedColumn

    from exchange.fetcher import FetchProgress, fetch_version

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with client_for(server, token) as client:
        if as_json:
            result = fetch_version(
                client,
                version,
                out_dir,
                purpose=purpose,
                commercial=commercial,
                territory=territory,
                files=file,
            )
        else:
            with Progress(*columns, console=err, transient=True) as bar:
                task = bar.add_task("downloading", total=None)
                hooks = FetchProgress(
                    started=lambda total: bar.update(task, total=total),
                    advanced=lambda n: bar.advance(task, n),
                    verifying=lambda name: bar.update(task, description=f"verifying {name}"),
                )
                result = fetch_version(
                    client,
                    version,
                    out_dir,
                    purpose=purpose,
                    commercial=commercial,
                    territory=territory,
                    files=file,
                    progress=hooks,
                )
    summary = {
        "delivery": result.delivery,
        "version": result.version,
        "files": result.files,
        "downloaded_bytes": result.downloaded_bytes,
        "resumed_bytes": result.resumed_bytes,
        "already_present": result.already_present,
        "receipt": str(result.receipt) if result.receipt else None,
    }
    emit(
        summary,
        as_json,
        lambda: out.print(
            f"[green]verified[/green] {len(result.files)} file(s) of {version[:23]}… in {out_dir} "
            f"({_human_size(result.downloaded_bytes)} downloaded"
            + (f", {_human_size(result.resumed_bytes)} resumed" if result.resumed_bytes else "")
            + f"); delivery receipt: ledger entry {result.delivery}, {result.receipt}",
            highlight=False,
        ),
    )


@data_app.command("receipt")
def data_receipt(
    seq: Annotated[int, typer.Argument(help="The data.delivered ledger entry.")],
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the receipt here.")] = None,
    verify: Annotated[
        bool, typer.Option(help="Check it against the log's key (pinned or given).")
    ] = True,
    vkey: Annotated[str | None, typer.Option(help="The log's verifier key.")] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A delivery's receipt: its ledger entry and an offline proof that the log includes it."""
    import base64

    with client_for(server, token) as client:
        receipt = client.delivery_receipt(seq)
        trusted = vkey or _pinned_vkey(config_dir() / "audit", client.server) or client.vkey()
    if verify:
        bundle = ProofBundle.from_text(receipt["proof"])
        verify_proof_bundle(
            bundle,
            entry=base64.b64decode(receipt["entry"]),
            log_verifier=Ed25519Verifier.from_vkey(trusted),
        )
    if out_file is not None:
        out_file.write_text(json.dumps(receipt, indent=2) + "\n")
    delivered = receipt["delivery"]

    def human() -> None:
        out.print(
            f"delivery {seq}: {len(delivered['files'])} file(s) of {delivered['version']} to "
            f"{delivered['member']} under {delivered['agreement']} for {delivered['purpose']}"
            + ("; [green]included in the log[/green]" if verify else ""),
            highlight=False,
        )
        if out_file is not None:
            out.print(f"wrote {out_file}")

    emit({**receipt, "verified": verify}, as_json, human)


@data_app.command("list")
def data_list(server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Your deliveries."""
    with client_for(server, token) as client:
        result = client.deliveries()
    emit(
        result,
        as_json,
        lambda: table(
            "Deliveries",
            ["entry", "version", "agreement", "purpose", "files", "when"],
            [
                [
                    d["seq"],
                    d["version"][:23] + "…",
                    d["agreement"],
                    d["purpose"],
                    len(d["files"]),
                    d["created_at"],
                ]
                for d in result
            ],
        ),
    )


@catalog_app.command("import-dpi")
def catalog_import_dpi(
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="DPI summary JSON files.")],
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import Data Provenance Initiative dataset cards as metadata-only listings, classified."""
    from licensing.dpi import load_summaries

    load_summaries(directory)  # the same checks the exchange makes, before anything is sent
    summaries = {
        path.name: parse_json(_read_text(path), what=path.name)
        for path in sorted(directory.glob("*.json"))
        if not path.name.startswith("_")
    }
    with client_for(server, token) as client:
        result = client.import_dpi(summaries)
    emit(
        result,
        as_json,
        lambda: table(
            f"{len(result)} listing(s) imported",
            ["DPI id", "listing", "own licences", "with lineage", "unresolved sources"],
            [
                [r["uid"], r["slug"], r["own"], r["inherited"], ", ".join(r["unresolved_sources"])]
                for r in result
            ],
        ),
    )


# -- audit -------------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify(
    server: ServerOpt = None,
    local: Annotated[
        bool, typer.Option("--local", help="Audit the operator's database instead.")
    ] = False,
    data_dir: DataDirOpt = None,
    vkey: Annotated[
        str | None, typer.Option(help="The log's verifier key (pinned after first use).")
    ] = None,
    witness: Annotated[
        list[str] | None,
        typer.Option(help="A witness's vkey: require its cosignature (repeatable)."),
    ] = None,
    quorum: Annotated[
        int | None, typer.Option(help="How many --witness must cosign (default: all).")
    ] = None,
    policy_file: Annotated[
        Path | None,
        typer.Option("--policy", help="A c2sp.org/tlog-policy file the checkpoint must satisfy."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-check every entry, chain link and signature, and the root against the checkpoint."""
    from exchange.audit import audit_local, audit_remote
    from exchange.db import make_engine

    state_dir = config_dir() / "audit"
    policy = _audit_policy(witness or [], quorum, policy_file)
    if vkey is None and policy.logs:
        vkey = policy.logs[0].verifier.vkey if len(policy.logs) == 1 else None
    if local:
        settings = settings_for(data_dir)
        verifier = load_log_key(settings.resolved_log_key_file, settings.log_origin).verifier
        if vkey is not None and vkey != verifier.vkey:
            raise CliError("the data dir's log key is not the --vkey given")
        engine = make_engine(settings.resolved_database_url)
        try:
            with progress_bar("auditing", not as_json) as tick:
                report = audit_local(
                    engine, verifier, state_dir=state_dir / "local", progress=tick, policy=policy
                )
        finally:
            engine.dispose()
    else:
        with client_for(server) as client:
            trusted = vkey or _pinned_vkey(state_dir, client.server)
            if trusted is None:
                trusted = client.vkey()
                err.print(f"trusting the log key the server presents (first use): {trusted}")
            verifier = Ed25519Verifier.from_vkey(trusted)
            with progress_bar("auditing", not as_json) as tick:
                report = audit_remote(
                    client, verifier, state_dir=state_dir, progress=tick, policy=policy
                )
            _pin_vkey(state_dir, client.server, trusted)
    result = {
        "ok": True,
        "origin": report.origin,
        "size": report.size,
        "root": report.root,
        "consistent_from": report.previous_size,
        "witnesses": list(report.witnesses),
        "seconds": round(report.seconds, 3),
    }
    emit(
        result,
        as_json,
        lambda: out.print(
            f"[green]ok[/green] {report.origin}: {report.size:,} entries, "
            f"root {report.root[:16]}…, "
            + (f"consistent with size {report.previous_size:,}, " if report.previous_size else "")
            + (
                f"cosigned by {', '.join(report.witnesses)}, "
                if policy.requires_cosignatures
                else ""
            )
            + f"{report.rate:,.0f} entries/s",
            highlight=False,
        ),
    )


@audit_app.command("anchors")
def audit_anchors_command(
    rpc: RpcOpt,
    server: ServerOpt = None,
    vkey: Annotated[
        str | None, typer.Option(help="The log's verifier key (pinned after first use).")
    ] = None,
    confirmations: Annotated[
        int | None,
        typer.Option(min=1, help="Demand this many confirmations (default: each entry's own)."),
    ] = None,
    finalized: Annotated[
        bool, typer.Option("--finalized", help="Demand blocks at or below the finalized tag.")
    ] = False,
    from_block: Annotated[
        int, typer.Option(min=0, help="Read the contracts' events from this block on.")
    ] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Check every checkpoint.anchored entry of the log, and every anchor event of its contracts,
    against the chain; one line per failure."""
    from exchange.anchor_audit import Demand, audit_anchors
    from ledger.anchor_evm import EvmChain

    state_dir = config_dir() / "audit"
    with client_for(server) as client:
        trusted = vkey or _pinned_vkey(state_dir, client.server)
        if trusted is None:
            trusted = client.vkey()
            err.print(f"trusting the log key the server presents (first use): {trusted}")
        with progress_bar("reading the log", not as_json) as tick:
            report = audit_anchors(
                client,
                EvmChain(rpc),
                Ed25519Verifier.from_vkey(trusted),
                demand=Demand(confirmations=confirmations, finalized=finalized),
                from_block=from_block,
                progress=tick,
            )
        _pin_vkey(state_dir, client.server, trusted)  # the log's checkpoint verified with it
    checks = [
        {
            "seq": c.seq,
            "size": c.size,
            "tx_hash": c.tx_hash,
            "block_number": c.block_number,
            "confirmations": c.depth,
            "ok": c.ok,
            "error": c.error,
        }
        for c in report.checks
    ]
    result = {
        "ok": not report.failures,
        "origin": report.origin,
        "size": report.size,
        "chain_id": report.chain.chain_id,
        "head": report.chain.head,
        "anchors": checks,
        "events": [
            {
                "tx_hash": e.found.tx_hash,
                "block_number": e.found.block_number,
                "size": e.found.event.size,
                "root": e.found.event.root.hex(),
                "ok": e.ok,
                "error": e.error,
            }
            for e in report.events
        ],
        "events_ahead": report.events_ahead,
    }
    if as_json:
        out.print_json(json.dumps(result))
    elif not report.failures:
        latest = report.checks[-1] if report.checks else None
        out.print(
            f"[green]ok[/green] {report.origin}: {len(report.checks)} anchor(s) verified on chain "
            f"{report.chain.chain_id}, {len(report.events)} event(s) of the contract match the log"
            + (
                f"; the latest anchors size {latest.size:,} in block {latest.block_number} "
                f"({latest.depth} confirmations)"
                if latest
                else " (the log records none yet)"
            ),
            highlight=False,
        )
    for failure in report.failures:
        err.print(f"error: {failure.describe()}", highlight=False, markup=False)
    if report.failures:
        raise typer.Exit(1)


def _audit_policy(
    witnesses: list[str], quorum: int | None, policy_file: Path | None
) -> WitnessPolicy:
    """The witness policy an audit enforces: --policy, or --witness with --quorum, or none."""
    if policy_file is not None:
        if witnesses or quorum is not None:
            raise CliError("give either --policy or --witness/--quorum, not both")
        return WitnessPolicy.from_text(
            policy_file.read_bytes().decode("utf-8", errors="surrogateescape")
        )
    if quorum is not None and not witnesses:
        raise CliError("--quorum needs the witnesses it counts: give --witness VKEY")
    listed = []
    for text in witnesses:
        verifier = CosignatureVerifier.from_vkey(text)
        listed.append(PolicyWitness(verifier.name, verifier))
    return WitnessPolicy.k_of_n(listed, len(listed) if quorum is None else quorum)


def _pins(state_dir: Path) -> dict[str, str]:
    try:
        pins: dict[str, str] = json.loads((state_dir / "pins.json").read_text())
        return pins
    except FileNotFoundError:
        return {}


def _pinned_vkey(state_dir: Path, server: str) -> str | None:
    return _pins(state_dir).get(server)


def _pin_vkey(state_dir: Path, server: str, vkey: str) -> None:
    pins = _pins(state_dir)
    if pins.get(server) != vkey:
        pins[server] = vkey
        state_dir.mkdir(parents=True, exist_ok=True)
        (state_dir / "pins.json").write_text(json.dumps(pins, indent=2))


@audit_app.command("verify-proof")
def audit_verify_proof(
    bundle_file: Annotated[Path, typer.Argument(metavar="FILE", help="A .tlog-proof bundle.")],
    vkey: Annotated[str, typer.Option(help="The log's verifier key.")],
    entry: Annotated[Path, typer.Option(help="The entry's exact bytes.")],
    as_json: JsonOpt = False,
) -> None:
    """Verify an offline proof bundle (works for any c2sp log, with no server)."""
    bundle = ProofBundle.from_text(_read_text(bundle_file))
    signed = verify_proof_bundle(
        bundle, entry=entry.read_bytes(), log_verifier=Ed25519Verifier.from_vkey(vkey)
    )
    result = {
        "ok": True,
        "origin": signed.checkpoint.origin,
        "index": bundle.index,
        "size": signed.checkpoint.size,
    }
    emit(
        result,
        as_json,
        lambda: out.print(
            f"[green]ok[/green] entry {bundle.index} is in {signed.checkpoint.origin} "
            f"at size {signed.checkpoint.size:,}"
        ),
    )


@audit_app.command("verify-document")
def audit_verify_document(
    bundle_file: Annotated[Path, typer.Argument(metavar="BUNDLE", help="A document proof bundle.")],
    vkey: Annotated[str, typer.Option(help="The log's verifier key.")],
    document: Annotated[
        Path | None, typer.Option(help="The document's bytes, to check too.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify offline that a document belongs to a version published on the ledger."""
    from catalog.proofs import DocumentBundle, verify_document_bundle

    bundle = DocumentBundle.from_json(parse_json(_read_text(bundle_file), what=str(bundle_file)))
    verified = verify_document_bundle(
        bundle,
        document=document.read_bytes() if document else None,
        log_key=vkey,
        require_ledger=True,
    )
    result = {
        "ok": True,
        "version": verified.version,
        "dataset": verified.dataset,
        "file": verified.file,
        "record": verified.record,
        "document_sha256": verified.document_sha256,
        "document_checked": verified.document_checked,
        "log_size": verified.checkpoint.checkpoint.size if verified.checkpoint else None,
    }
    emit(
        result,
        as_json,
        lambda: out.print(
            f"[green]ok[/green] record {verified.record} of {verified.file} "
            f"is in {verified.dataset} "
            f"{verified.version}, published on the ledger"
            + (" (document bytes checked)" if verified.document_checked else ""),
            highlight=False,
        ),
    )


@audit_app.command("verify-attestation")
def audit_verify_attestation(
    bundle_file: Annotated[Path, typer.Argument(metavar="BUNDLE", help="An attestation bundle.")],
    vkey: Annotated[str, typer.Option(help="The log's verifier key.")],
    as_json: JsonOpt = False,
) -> None:
    """Verify offline that a model's training data was covered by its licences, as attested."""
    from licensing.attestation import verify_attestation_bundle

    bundle = parse_json(_read_text(bundle_file), what=str(bundle_file))
    verified = verify_attestation_bundle(bundle, log_vkey=vkey)
    result = {
        "ok": True,
        "seq": verified.seq,
        "member": verified.member,
        "model": verified.model,
        "items": verified.items,
        "agreements": list(verified.agreements),
        "log_size": verified.log_size,
    }
    emit(
        result,
        as_json,
        lambda: out.print(
            f"[green]ok[/green] {verified.member} attested at entry {verified.seq} that "
            f"{verified.model}'s {verified.items:,} training item(s) are covered by "
            f"{len(verified.agreements)} agreement(s), each re-checked against its terms",
            highlight=False,
        ),
    )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CliError(f"{path} is not UTF-8 text") from None


# -- witness -------------------------------------------------------------------------------------

WitnessDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="The witness's data dir [env CORPUSX_WITNESS_DATA_DIR]."),
]


def _witness_dir(data_dir: Path | None) -> Path:
    return load_witness_settings(data_dir=data_dir).data_dir


@contextmanager
def _witness_store(data_dir: Path | None) -> Iterator[Any]:
    from exchange.witness_store import WitnessStore

    store = WitnessStore(_witness_dir(data_dir))
    try:
        yield store
    finally:
        store.close()


@witness_app.command("init")
def witness_init(
    data_dir: WitnessDirOpt = None,
    name: Annotated[
        str | None,
        typer.Option(
            help="The witness's name, e.g. example.org/witness [env CORPUSX_WITNESS_NAME]."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a witness: its data dir, its Ed25519 cosigning key and its state database."""
    from exchange.witness_store import create_witness

    settings = load_witness_settings(data_dir=data_dir, name=name)
    if not settings.name:
        raise CliError("give the witness a name: --name NAME (or CORPUSX_WITNESS_NAME)")
    signer = create_witness(settings.data_dir, settings.name)
    result = {"data_dir": str(settings.data_dir), "name": signer.name, "vkey": signer.verifier.vkey}
    emit(result, as_json, lambda: out.print(signer.verifier.vkey, highlight=False))


@witness_app.command("vkey")
def witness_vkey(data_dir: WitnessDirOpt = None, as_json: JsonOpt = False) -> None:
    """Print the witness's verifier key (give it to the logs you witness, and to auditors)."""
    with _witness_store(data_dir) as store:
        vkey = store.vkey
    emit({"vkey": vkey}, as_json, lambda: out.print(vkey, highlight=False))


@witness_app.command("add-log")
def witness_add_log(
    vkey: Annotated[str, typer.Option(help="The log's verifier key.")],
    origin: Annotated[
        str | None, typer.Option(help="The log's checkpoint origin (default: the key's name).")
    ] = None,
    data_dir: WitnessDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Follow a log: cosign its checkpoints that are signed with this key (repeatable)."""
    with _witness_store(data_dir) as store:
        added = store.add_log(vkey, origin)
    shown = origin or vkey.split("+", 1)[0]
    result = {"origin": shown, "vkey": vkey, "added": added}
    emit(
        result,
        as_json,
        lambda: out.print(
            f"{'following' if added else 'already following'} {shown}", highlight=False
        ),
    )


@witness_app.command("logs")
def witness_logs(data_dir: WitnessDirOpt = None, as_json: JsonOpt = False) -> None:
    """The logs this witness follows, and the last checkpoint it cosigned for each."""
    with _witness_store(data_dir) as store:
        logs = store.logs()
    rows = [
        {
            "origin": entry.origin,
            "vkeys": list(entry.vkeys),
            "size": entry.state.size if entry.state else None,
            "root": entry.state.root.hex() if entry.state else None,
            "cosigned_at": entry.state.timestamp if entry.state else None,
        }
        for entry in logs
    ]
    emit(
        rows,
        as_json,
        lambda: table(
            "Followed logs",
            ["origin", "cosigned size", "root", "cosigned at (POSIX)"],
            [
                [
                    r["origin"],
                    r["size"] if r["size"] is not None else "-",
                    (r["root"] or "-")[:16],
                    r["cosigned_at"] or "-",
                ]
                for r in rows
            ],
        ),
    )


@witness_app.command("evidence")
def witness_evidence(
    data_dir: WitnessDirOpt = None,
    kind: Annotated[
        str | None, typer.Option(help="Only this kind: fork, inconsistent or stale.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Refused checkpoints the logs signed: forks, inconsistent proofs, stale views."""
    from ledger.witness import EVIDENCE_KINDS

    if kind is not None and kind not in EVIDENCE_KINDS:
        raise CliError(f"--kind must be one of {', '.join(EVIDENCE_KINDS)}")
    with _witness_store(data_dir) as store:
        kept = store.evidence(kind=kind)
    records = [{"id": k.id, "received_at": k.received_at, **k.evidence.to_json()} for k in kept]

    def human() -> None:
        out.print(f"{len(records)} refused checkpoint(s) kept as evidence", highlight=False)
        for r in records:
            cosigned = (
                f"size {r['cosigned_size']}, root {str(r['cosigned_root'])[:16]}…"
                if r["cosigned"]
                else "none"
            )
            out.print(
                f"#{r['id']} {r['kind']}  {r['origin']}  received {r['received_at']}\n"
                f"   refused:  size {r['checkpoint_size']}, root {r['checkpoint_root'][:16]}…, "
                f"old size {r['old_size']}\n"
                f"   cosigned: {cosigned}\n"
                f"   {r['detail']}",
                highlight=False,
                markup=False,
            )

    emit({"count": len(records), "evidence": records}, as_json, human)


@witness_app.command("serve")
def witness_serve(
    data_dir: WitnessDirOpt = None,
    host: Annotated[
        str | None, typer.Option(help="Bind address [env CORPUSX_WITNESS_HOST].")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port [env CORPUSX_WITNESS_PORT].")] = None,
) -> None:
    """Run the witness's HTTP service: POST /add-checkpoint (c2sp.org/tlog-witness)."""
    import uvicorn

    from exchange.witness_server import create_witness_app

    settings = load_witness_settings(data_dir=data_dir, host=host, port=port)
    app = create_witness_app(settings.data_dir)  # fails here, clearly, on a bad data dir
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")


# -- entry point -------------------------------------------------------------------------------

USER_ERRORS: tuple[type[Exception], ...] = (
    LicensingError,
    CliError,
    ClientError,
    ExchangeError,
    LedgerError,
    KeyFileError,
    LogKeyError,
    NotMigratedError,
    ChainKeyError,
    SettingsError,
    WitnessConfigError,
    WitnessError,
    OSError,
)


LOADED_USER_ERRORS = (("catalog.errors", "CatalogError"), ("storage.errors", "StorageError"))
"""User errors of packages the CLI does not load at start (pyarrow and boto3 take most of a
second): a command that raised one has loaded its module."""


def user_errors() -> tuple[type[Exception], ...]:
    loaded = [getattr(sys.modules[m], name) for m, name in LOADED_USER_ERRORS if m in sys.modules]
    return USER_ERRORS + tuple(loaded)


def main() -> None:
    """Run the CLI; typer reports usage errors itself (exit 2), ours are one line (exit 1)."""
    try:
        app()
    except Exception as failure:
        if not isinstance(failure, user_errors()):
            _internal_error(failure)
        message = str(failure).splitlines()[0] if str(failure) else type(failure).__name__
        err.print(f"error: {message}", highlight=False, markup=False)
        sys.exit(1)


def _internal_error(bug: Exception) -> NoReturn:
    """A bug of ours: still one line, with a way to see more (exit 2)."""
    if os.environ.get("CORPUSX_DEBUG"):
        raise bug
    err.print(
        f"internal error: {type(bug).__name__}: {bug} (set CORPUSX_DEBUG=1 for details)",
        highlight=False,
        markup=False,
    )
    sys.exit(2)
