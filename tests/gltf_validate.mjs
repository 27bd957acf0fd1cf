// Run the Khronos glTF validator on files: `node tests/gltf_validate.mjs a.glb [b.glb ...]`.
// Prints one JSON array of reports, in argument order. Exit 0 when every file was read
// (issues are in the reports), 2 on bad usage or I/O, 3 when the validator is not installed.
// The validator comes from .cache/node-tools (scripts/test-tools.sh), else from NODE_PATH.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);

function loadValidator() {
  for (const id of [path.join(repo, ".cache/node-tools/node_modules/gltf-validator"), "gltf-validator"]) {
    try {
      return require(id);
    } catch {
      // try the next place
    }
  }
  return null;
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node gltf_validate.mjs FILE.glb [FILE.glb ...]");
  process.exit(2);
}
const validator = loadValidator();
if (!validator) {
  console.error("gltf-validator not found; run `bash scripts/test-tools.sh`");
  process.exit(3);
}
const reports = [];
for (const file of files) {
  let bytes;
  try {
    bytes = new Uint8Array(readFileSync(file));
  } catch (err) {
    console.error(`cannot read ${file}: ${err.message}`);
    process.exit(2);
  }
  // maxIssues 0: report every issue, not the first hundred
  reports.push(await validator.validateBytes(bytes, { uri: path.basename(file), maxIssues: 0 }));
}
process.stdout.write(JSON.stringify(reports, null, 1) + "\n");
