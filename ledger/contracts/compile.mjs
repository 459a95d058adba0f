// Compile CheckpointAnchor.sol with the pinned solc-js (package.json) into CheckpointAnchor.json:
// the ABI, creation and runtime bytecode, the compiler version and the exact settings used.
// The output is committed (it ships in the ledger package); tests/unit/ledger/test_contract.py
// re-runs this script and compares the bytes.
//
//   node ledger/contracts/compile.mjs            write ledger/contracts/CheckpointAnchor.json
//   node ledger/contracts/compile.mjs --stdout   print it instead (what the test does)
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import solc from "solc";

const here = dirname(fileURLToPath(import.meta.url));
const SOURCE = "CheckpointAnchor.sol";
const CONTRACT = "CheckpointAnchor";
// Paris (no PUSH0) runs on every EVM chain an alliance is likely to pick, L2s included.
const SETTINGS = {
  optimizer: { enabled: true, runs: 10000 },
  evmVersion: "paris",
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};

const input = {
  language: "Solidity",
  sources: { [SOURCE]: { content: readFileSync(join(here, SOURCE), "utf8") } },
  settings: SETTINGS,
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
if (errors.length > 0) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(1);
}
const compiled = output.contracts[SOURCE][CONTRACT];
const artifact = {
  contract: CONTRACT,
  source: SOURCE,
  compiler: { name: "solc-js", version: solc.version() },
  settings: { optimizer: SETTINGS.optimizer, evmVersion: SETTINGS.evmVersion },
  abi: compiled.abi,
  bytecode: "0x" + compiled.evm.bytecode.object,
  deployedBytecode: "0x" + compiled.evm.deployedBytecode.object,
};
const text = JSON.stringify(artifact, null, 2) + "\n";
if (process.argv.includes("--stdout")) process.stdout.write(text);
else writeFileSync(join(here, `${CONTRACT}.json`), text);
