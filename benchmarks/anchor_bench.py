"""Anchoring benchmarks on a real anvil node: latency to a final anchor, gas, anchors per day.

    . .venv/bin/activate
    python benchmarks/anchor_bench.py                  # everything (~3 minutes)
    python benchmarks/anchor_bench.py --only gas,model
    python benchmarks/anchor_bench.py --trials 5 --block-times 1

Writes ``benchmarks/results/anchor-YYYY-MM-DD.md`` (+ ``.json``) with the exact command, the
machine and the code version. What it measures (see benchmarks/README.md):

1. ``latency``: an entry is appended to a fresh SQLite exchange; the exchange's own
   ``Anchorer`` (as the server runs it, one ``step()`` every poll interval) sends an anchor of a
   checkpoint that covers it, waits for its confirmations, and records ``checkpoint.anchored``.
   Time from the append to that record, split into: to the transaction being sent, to its
   inclusion in a block, to the entry being recorded. For anvil mining a block every B seconds
   (``--block-time B``) and several confirmation depths; "automine" (a block per transaction) is
   the exchange's own overhead with no waiting for blocks.
2. ``gas``: gas used by ``anchor(origin, size, root)`` for several origin lengths (read from real
   receipts), and by the deployment.
3. ``schedule``: entries appended at a steady rate with the anchoring loop running; the number of
   anchors sent is compared with the schedule's model (one anchor per min(N / rate, T) seconds).
4. ``model``: from the measured gas and the validated model, anchors per day and gas per day at
   1 entry/s and 1,000 entries/s for several schedules (N entries, T seconds). Gas prices are
   assumptions, labelled as such.

No figure here is asserted by any test; the machine is small and shared.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python benchmarks/anchor_bench.py` from the repository root
    sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from sqlmodel import col, select  # noqa: E402

from benchmarks.meta import git as _git  # noqa: E402
from exchange.anchor_models import FINAL, ChainAnchor  # noqa: E402
from exchange.anchoring import Anchorer, anchor_policy  # noqa: E402
from exchange.context import Exchange  # noqa: E402
from exchange.settings import Settings  # noqa: E402
from exchange.setup import initialise  # noqa: E402
from exchange.statements import exchange_statement, record_statement  # noqa: E402
from ledger.anchor import contract_artifact  # noqa: E402
from ledger.anchor_evm import EvmChain  # noqa: E402
from ledger.checkpoint import Checkpoint  # noqa: E402
from tests.anvil import DEV_KEYS, Anvil, running_anvil  # noqa: E402

ALL = ("latency", "gas", "schedule", "model")
SECONDS_PER_DAY = 86_400
KEY = bytes.fromhex(DEV_KEYS[0])
ORIGIN = "corpusx.local/0123456789ab"  # the form `corpusx init` gives an origin (26 characters)
#: Assumed gas prices, to turn gas into ether: not measured (anvil's price means nothing).
GAS_PRICES_GWEI = (0.01, 1.0, 30.0)
SCHEDULES = ((1_000, 600.0), (10_000, 600.0), (100_000, 3_600.0), (1_000_000, 86_400.0))


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="", help=f"comma-separated subset of {', '.join(ALL)}")
    parser.add_argument("--trials", type=int, default=8, help="latency trials per configuration")
    parser.add_argument(
        "--block-times", default="0,1,2", help="anvil block times in s (0: automine)"
    )
    parser.add_argument("--confirmations", default="1,3", help="confirmation depths to try")
    parser.add_argument("--poll", type=float, default=0.25, help="the anchorer's poll interval")
    parser.add_argument("--schedule-seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--tag", default=None, help="suffix of the result file names")
    return parser.parse_args(argv)


# -- an exchange that anchors ------------------------------------------------------------------


class Bench:
    """A fresh SQLite exchange anchoring to a fresh contract on ``node``."""

    def __init__(self, node: Anvil, workdir: Path, **overrides: Any) -> None:
        chain = EvmChain(node.url, private_key=KEY)
        self.deployment = chain.deploy(contract_artifact().bytecode)
        key_file = workdir / "chain.key"
        if not key_file.exists():
            key_file.write_text("0x" + KEY.hex() + "\n")
            key_file.chmod(0o600)
        data = Path(tempfile.mkdtemp(dir=workdir))
        settings = Settings(
            data_dir=data,
            checkpoint_interval=0,
            log_origin=ORIGIN,
            chain_rpc_url=node.url,
            chain_contract=self.deployment.contract,
            chain_key_file=key_file,
            **overrides,
        )
        initialise(settings, operator="operator", operator_name="Operator", operator_key=(
            Ed25519PrivateKey.generate()
        ))  # fmt: skip
        self.settings = settings
        self.exchange = Exchange.open(settings)
        self.chain = EvmChain(
            node.url, contract=self.deployment.contract, private_key=KEY, timeout=10
        )
        self.anchorer = Anchorer(self.exchange, self.chain, anchor_policy(self.exchange))
        self._n = 0

    def append(self, count: int = 1) -> int:
        """Append ``count`` statements; returns the seq of the last."""
        self._n += count
        return append_to(self.exchange, count, first=self._n - count)

    def anchor_covering(self, seq: int) -> ChainAnchor | None:
        with self.exchange.reading() as session:
            return session.exec(
                select(ChainAnchor)
                .where(col(ChainAnchor.size) > seq)
                .order_by(col(ChainAnchor.size))
                .limit(1)
            ).first()

    def anchors(self) -> list[ChainAnchor]:
        with self.exchange.reading() as session:
            return list(session.exec(select(ChainAnchor).order_by(col(ChainAnchor.size))).all())

    def close(self) -> None:
        self.exchange.engine.dispose()


def append_to(exchange: Exchange, count: int, *, first: int) -> int:
    with exchange.transaction() as session:
        for n in range(first, first + count):
            statement = exchange_statement(exchange.log_signer, "attest.bench", {"n": n})
            entry = record_statement(session, statement)
    return entry.seq


def append_at_rate(settings: Settings, rate: float, seconds: float, window: Any) -> None:
    """In another process (as the members' requests are): append ``rate`` entries a second.

    ``window`` gets (start, end) in POSIX time and the count, so that process start-up is not
    counted as time spent appending.
    """
    exchange = Exchange.open(settings)
    window[0] = time.time()
    started = time.monotonic()
    appended = 0
    while (elapsed := time.monotonic() - started) < seconds:
        due = int(rate * elapsed)
        if due > appended:
            append_to(exchange, due - appended, first=1_000_000 + appended)
            appended = due
        time.sleep(0.02)
    window[1], window[2] = time.time(), appended
    exchange.engine.dispose()


# -- 1. latency --------------------------------------------------------------------------------


def _trial(bench: Bench, poll: float, timeout: float = 120) -> dict[str, float]:
    """Append one entry; step the anchorer every ``poll`` s until its anchor is recorded."""
    seq = bench.append()
    started = time.perf_counter()
    sent = included = None
    deadline = started + timeout
    while True:
        bench.anchorer.step()
        now = time.perf_counter()
        anchor = bench.anchor_covering(seq)
        if anchor is not None:
            sent = sent or now
            if anchor.block_number is not None or anchor.state == FINAL:
                included = included or now
            if anchor.state == FINAL:
                return {
                    "to_sent": sent - started,
                    "to_included": included - started,
                    "to_final": now - started,
                    "depth": anchor.depth,
                    "resubmissions": anchor.resubmissions,
                }
        if now > deadline:
            raise RuntimeError(f"no final anchor for entry {seq} after {timeout:.0f}s")
        time.sleep(poll)


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))]

    return {
        "n": len(values),
        "mean": statistics.fmean(values),
        "p50": rank(0.5),
        "p90": rank(0.9),
        "max": ordered[-1],
    }


def run_latency(args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    rows = []
    for block_time in [float(b) for b in args.block_times.split(",")]:
        extra = ("--block-time", str(block_time)) if block_time > 0 else ()
        with running_anvil(extra=extra) as node:
            for depth in [int(c) for c in args.confirmations.split(",")]:
                if block_time == 0 and depth > 1:
                    continue  # automine makes no block after the anchor's: it would never be final
                log(f"latency: block time {block_time or 'automine'}, {depth} confirmation(s)")
                bench = Bench(
                    node,
                    workdir,
                    chain_confirmations=depth,
                    anchor_every_entries=1,
                    anchor_interval=0,
                    chain_poll_interval=args.poll,
                )
                trials = [_trial(bench, args.poll) for _ in range(args.trials)]
                bench.close()
                rows.append(
                    {
                        "block_time": block_time,
                        "confirmations": depth,
                        "poll": args.poll,
                        "to_sent": _summary([t["to_sent"] for t in trials]),
                        "to_included": _summary([t["to_included"] for t in trials]),
                        "to_final": _summary([t["to_final"] for t in trials]),
                        "resubmissions": sum(int(t["resubmissions"]) for t in trials),
                    }
                )
    return rows


# -- 2. gas ------------------------------------------------------------------------------------


def run_gas(workdir: Path) -> dict[str, Any]:
    log("gas")
    with running_anvil() as node:
        chain = EvmChain(node.url, private_key=KEY)
        deployment = chain.deploy(contract_artifact().bytecode)
        deploy_gas = int(mined_receipt(node, deployment.tx_hash)["gasUsed"], 16)
        chain = EvmChain(node.url, contract=deployment.contract, private_key=KEY)
        per_origin = []
        for length in (20, 26, 32, 33, 64, 200):
            origin = ("corpusx.local/" + "x" * 200)[:length]
            used = []
            for size in (1, 1_000, 2**40):
                root = os.urandom(32)
                tx = chain.broadcast(chain.prepare(Checkpoint(origin, size, root)).raw)
                receipt = mined_receipt(node, tx)
                assert int(receipt["status"], 16) == 1
                used.append(int(receipt["gasUsed"], 16))
            per_origin.append({"origin_length": length, "gas": used})
    return {"deployment": deploy_gas, "anchor": per_origin}


def mined_receipt(node: Anvil, tx_hash: str, timeout: float = 30.0) -> dict[str, Any]:
    """The transaction's receipt once the node has one: even an automining anvil may answer
    ``null`` for a moment after the send."""
    deadline = time.monotonic() + timeout
    while (receipt := node.rpc("eth_getTransactionReceipt", tx_hash)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{tx_hash} was not mined within {timeout:.0f} s")
        time.sleep(0.05)
    result: dict[str, Any] = receipt
    return result


def anchor_gas(gas: dict[str, Any], length: int = len(ORIGIN)) -> int:
    rows = {row["origin_length"]: row["gas"] for row in gas["anchor"]}
    return max(rows[length])


# -- 3. the schedule, measured ---------------------------------------------------------------


def _run_loop(anchorer: Anchorer, poll: float, stop: threading.Event) -> None:
    while not stop.is_set():
        anchorer.step()
        stop.wait(poll)


def run_schedule(args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    cases = [
        {"rate": 2.0, "every_entries": 1_000, "interval": 4.0},  # time-triggered
        {"rate": 100.0, "every_entries": 400, "interval": 600.0},  # entry-triggered
    ]
    rows = []
    with running_anvil() as node:
        for case in cases:
            log(f"schedule: {case}")
            bench = Bench(
                node,
                workdir,
                chain_confirmations=1,
                anchor_every_entries=case["every_entries"],
                anchor_interval=case["interval"],
                chain_poll_interval=args.poll,
            )
            bench.anchorer.step()  # the first anchor (of the genesis entry) is not counted
            while not bench.anchors() or bench.anchors()[-1].state != FINAL:
                time.sleep(args.poll)
                bench.anchorer.step()
            already = {a.size for a in bench.anchors()}
            stop = threading.Event()
            loop = threading.Thread(target=_run_loop, args=(bench.anchorer, args.poll, stop))
            window = multiprocessing.Array("d", 3)
            appender = multiprocessing.Process(
                target=append_at_rate,
                args=(bench.settings, case["rate"], args.schedule_seconds, window),
            )
            loop.start()
            appender.start()
            appender.join()
            stop.set()
            loop.join()
            start, end, appended = window[0], window[1], int(window[2])
            duration = end - start
            sent = [
                a
                for a in bench.anchors()
                if a.size not in already and a.submitted_at.timestamp() <= end
            ]
            waits = [a.submitted_at.timestamp() - start for a in sent]
            model_interval = min(case["every_entries"] / case["rate"], case["interval"])
            rows.append(
                {
                    **case,
                    "seconds": duration,
                    "entries": appended,
                    "anchors_sent": len(sent),
                    "sent_at": waits,
                    "sizes": [a.size for a in sent],
                    "model_interval": model_interval,
                    "model_anchors": duration / model_interval,
                }
            )
            bench.close()
    return rows


# -- 4. per day ------------------------------------------------------------------------------


def run_model(gas_per_anchor: int, inclusion_seconds: float) -> list[dict[str, Any]]:
    """Anchors per day = 1 / max(min(N / rate, T), time to inclusion): one anchor waits for
    inclusion before the next is sent, so a chain's block time bounds the rate too."""
    rows = []
    for rate in (1.0, 1_000.0):
        for every_entries, interval in SCHEDULES:
            period = max(min(every_entries / rate, interval), inclusion_seconds)
            per_day = SECONDS_PER_DAY / period
            gas_day = per_day * gas_per_anchor
            rows.append(
                {
                    "rate": rate,
                    "every_entries": every_entries,
                    "interval": interval,
                    "period": period,
                    "anchors_per_day": per_day,
                    "entries_per_anchor": rate * period,
                    "gas_per_day": gas_day,
                    "eth_per_day": {str(g): gas_day * g * 1e-9 for g in GAS_PRICES_GWEI},
                }
            )
    return rows


# -- results -----------------------------------------------------------------------------------


def collect_meta(command: str) -> dict[str, Any]:
    anvil_version = subprocess.run(
        [str(ROOT / "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"), "--version"],
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    return {
        "command": command,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "load_start": os.getloadavg(),
        "python": platform.python_version(),
        "web3": metadata.version("web3"),
        "anvil": anvil_version[0] if anvil_version else "?",
        "solc": contract_artifact().compiler,
        "git": _git("rev-parse", "--short", "HEAD"),
        "dirty": _git(
            "status",
            "--porcelain",
            "--",
            "ledger",
            "exchange",
            "benchmarks",
            ":!benchmarks/results",
        )
        != "",
    }


def _s(x: float) -> str:
    return f"{x:.2f}"


def render(r: dict[str, Any]) -> str:
    m = r["meta"]
    out = [
        f"# Anchoring benchmarks — {m['started'][:10]}",
        "",
        "Produced by this exact command, from the repository root with the venv active:",
        "",
        "```",
        m["command"],
        "```",
        "",
        "| Machine | |",
        "|---|---|",
        f"| nproc | {m['nproc']} |",
        f"| load average at start / end | {', '.join(f'{x:.2f}' for x in m['load_start'])} / "
        f"{', '.join(f'{x:.2f}' for x in m['load_end'])} |",
        f"| versions | Python {m['python']}, web3 {m['web3']}, {m['anvil']}, solc {m['solc']} |",
        f"| code | git {m['git']}{' (uncommitted changes)' if m['dirty'] else ''} |",
        f"| wall time | {r['wall_seconds']:.0f} s |",
        "",
        "The machine is shared and noisy (2 cores). No figure here is asserted by any test.",
        "",
    ]
    if "latency" in r:
        out += [
            "## 1. Append → anchor final (and recorded), on anvil",
            "",
            "One entry appended to a fresh SQLite exchange; its `Anchorer` steps every "
            f"{r['latency'][0]['poll']} s (the server's loop with `CORPUSX_CHAIN_POLL_INTERVAL` "
            "set to that) until the `checkpoint.anchored` entry for a checkpoint covering the "
            "entry is recorded. Schedule: anchor after every entry. Seconds, "
            f"{r['latency'][0]['to_final']['n']} trials each:",
            "",
            "| anvil block time | confirmations | to sent p50 | to included p50 | to final p50 | "
            "to final p90 | to final max | resent |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in r["latency"]:
            block = f"{row['block_time']:g} s" if row["block_time"] else "automine"
            out.append(
                f"| {block} | {row['confirmations']} | {_s(row['to_sent']['p50'])} | "
                f"{_s(row['to_included']['p50'])} | {_s(row['to_final']['p50'])} | "
                f"{_s(row['to_final']['p90'])} | {_s(row['to_final']['max'])} | "
                f"{row['resubmissions']} |"
            )
        out += [
            "",
            "Reading: with a block every B seconds and C confirmations the wait here is about "
            "C·B, plus up to a poll interval per phase: each trial appends just after the block "
            "that made the previous anchor final, so it waits nearly a whole block to be "
            "included (an entry appended at a random moment waits (C − ½)·B on average). "
            "Automine shows the exchange's own cost (checkpoint, sign, send, receipt, record) "
            "with no block to wait for.",
            "",
        ]
    if "gas" in r:
        gas = r["gas"]
        out += [
            "## 2. Gas",
            "",
            f"Deployment: {gas['deployment']:,} gas. `anchor(origin, size, root)` by origin "
            "length (tree sizes 1, 1,000 and 2^40; the size does not change the cost of a "
            "uint64 argument beyond its zero bytes in calldata):",
            "",
            "| origin length (bytes) | gas used |",
            "|---|---|",
        ]
        for row in gas["anchor"]:
            out.append(f"| {row['origin_length']} | {', '.join(f'{g:,}' for g in row['gas'])} |")
        out += [
            "",
            f"A default origin (`corpusx init`: {len(ORIGIN)} bytes) costs "
            f"**{anchor_gas(gas):,} gas per anchor** (the largest of the three sizes), "
            "used below.",
            "",
        ]
    if "schedule" in r:
        out += [
            "## 3. The schedule, measured",
            "",
            "Entries appended at a steady rate with the anchoring loop running (automine, 1 "
            "confirmation); the time between anchors sent compared with the model, one anchor "
            "per min(N / rate, T) seconds (times from the appender's start):",
            "",
            "| rate (entries/s) | N | T (s) | seconds | entries | anchors sent | sent at (s) | "
            "anchored sizes | period measured (s) | period modelled (s) |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in r["schedule"]:
            times = row["sent_at"]
            period = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else None
            out.append(
                f"| {row['rate']:g} | {row['every_entries']:,} | {row['interval']:g} | "
                f"{row['seconds']:.1f} | {row['entries']:,} | {row['anchors_sent']} | "
                f"{', '.join(f'{t:.1f}' for t in times)} | "
                f"{', '.join(f'{n:,}' for n in row['sizes'])} | "
                f"{'-' if period is None else f'{period:.2f}'} | {row['model_interval']:.2f} |"
            )
        out += [
            "",
            "The entries come from another process (as members' requests do), writing to the same "
            "SQLite file; the anchorer's own short write transactions (checkpoint, anchor row) "
            "queue behind them for SQLite's write lock, which delays a due anchor by up to a few "
            "seconds under this load (PostgreSQL takes row locks instead).",
            "",
        ]
    if "model" in r:
        prices = ", ".join(f"{g:g}" for g in GAS_PRICES_GWEI)
        out += [
            "## 4. Anchors and gas per day",
            "",
            f"From the model of section 3, the gas of section 2 ({r['model_gas']:,} per anchor) "
            f"and at least {r['model_inclusion']:.1f} s between anchors (the next one waits for "
            "the last to be included: the 2 s-block inclusion time measured in section 1). "
            f"Ether per day at assumed gas prices of {prices} gwei (assumptions, not measured: "
            "roughly an L2, a quiet L1, a busy L1). The checkpoint.anchored entries themselves "
            "add one log entry per anchor.",
            "",
            "| entries/s | N entries | T s | one anchor every (s) | entries per anchor | "
            f"anchors/day | gas/day | ETH/day at {prices} gwei |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in r["model"]:
            eth = " / ".join(f"{v:.4g}" for v in row["eth_per_day"].values())
            out.append(
                f"| {row['rate']:g} | {row['every_entries']:,} | {row['interval']:g} | "
                f"{row['period']:.1f} | {row['entries_per_anchor']:,.0f} | "
                f"{row['anchors_per_day']:,.1f} | {row['gas_per_day']:,.0f} | {eth} |"
            )
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    only = set(filter(None, args.only.split(","))) or set(ALL)
    given = sys.argv[1:] if argv is None else argv
    command = " ".join(["python benchmarks/anchor_bench.py", shlex.join(given)]).strip()
    started = time.monotonic()
    results: dict[str, Any] = {"meta": collect_meta(command)}
    with tempfile.TemporaryDirectory(prefix="anchorbench-") as tmp:
        workdir = Path(tmp)
        if "latency" in only:
            results["latency"] = run_latency(args, workdir)
        if "gas" in only or "model" in only:
            results["gas"] = run_gas(workdir)
        if "schedule" in only:
            results["schedule"] = run_schedule(args, workdir)
    if "model" in only:
        inclusion = [
            row["to_included"]["p50"]
            for row in results.get("latency", [])
            if row["block_time"] == 2
        ]
        results["model_gas"] = anchor_gas(results["gas"])
        results["model_inclusion"] = inclusion[0] if inclusion else 2.0
        results["model"] = run_model(results["model_gas"], results["model_inclusion"])
    results["meta"]["load_end"] = os.getloadavg()
    results["wall_seconds"] = time.monotonic() - started
    day = results["meta"]["started"][:10]
    tag = args.tag if args.tag is not None else ("-partial" if given else "")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"anchor-{day}{tag}.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / f"anchor-{day}{tag}.md").write_text(render(results))
    log(f"wrote {args.out / f'anchor-{day}{tag}.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
