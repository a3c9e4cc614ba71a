// README.md stays true to the code:
//   - its configuration table (between <!-- config:begin --> and <!-- config:end -->) is exactly what
//     `sfbridge config --markdown` prints (regenerate with tests/readme/gen-config), and names the
//     same variables as the table in common/cfg.c;
//   - every `sfbridge <command>` it shows exists in the CLI (workers/sfbridge/main.c) and is run by a
//     test, the demo or the rig scripts; every `make <target>` exists in the Makefile;
//   - every relative link points at a file of the repository; the sections a newcomer needs are there.
// Run: node --test tests/node/readme.test.mjs   (needs build/bin/sfbridge or $SFBRIDGE_BIN_DIR/sfbridge)
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const read = (f) => fs.readFileSync(path.join(root, f), "utf8");
const readme = read("README.md");

function binary() {
  for (const dir of [process.env.SFBRIDGE_BIN_DIR, path.join(root, "build", "bin")])
    if (dir && fs.existsSync(path.join(dir, "sfbridge"))) return path.join(dir, "sfbridge");
  return null;
}

test("the configuration table is the generated one", () => {
  const begin = readme.split("\n").filter((l) => l === "<!-- config:begin -->").length;
  const end = readme.split("\n").filter((l) => l === "<!-- config:end -->").length;
  assert.equal(begin, 1, "exactly one <!-- config:begin --> line");
  assert.equal(end, 1, "exactly one <!-- config:end --> line");
  const inReadme = readme.slice(readme.indexOf("<!-- config:begin -->\n") + 22, readme.indexOf("<!-- config:end -->"));
  const bin = binary();
  assert.ok(bin, "build/bin/sfbridge (or $SFBRIDGE_BIN_DIR/sfbridge) must be built to check the README");
  // the defaults, not this shell's environment
  const generated = execFileSync(bin, ["config", "--markdown"], { encoding: "utf8", env: { PATH: process.env.PATH } });
  assert.equal(inReadme, generated, "README.md's configuration table is out of date: run tests/readme/gen-config");

  const src = read("common/cfg.c");
  const body = src.slice(src.indexOf("cfg_table[] = {"), src.indexOf("{NULL, NULL, NULL"));
  const fromCode = [...body.matchAll(/\{"([A-Z][A-Z0-9_]+)",\s*"/g)].map((m) => m[1]);
  const fromReadme = [...inReadme.matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1]);
  assert.deepEqual(fromReadme, fromCode, "the README lists the variables of common/cfg.c, in order");
});

// the lines of fenced code blocks
const codeLines = [...readme.matchAll(/```[a-z]*\n([\s\S]*?)```/g)].flatMap((m) => m[1].split("\n"));

test("every sfbridge command shown exists and is exercised by a test, the demo or the rig", () => {
  const main = read("workers/sfbridge/main.c");
  const table = main.slice(main.indexOf("commands[] = {"), main.indexOf("{NULL, NULL, NULL}"));
  const known = new Set([...table.matchAll(/\{"([a-z]+)",\s*cmd_/g)].map((m) => m[1]));
  assert.ok(known.size >= 8, `commands parsed from main.c: ${[...known]}`);
  const shown = new Set();
  for (const line of codeLines)
    for (const m of line.matchAll(/(?:^|[\s/$(])sfbridge\s+(?:--json\s+)?([a-z][a-z-]*)/g)) shown.add(m[1]);
  // inline code too: `sfbridge status`, `sfbridge connect start`, ...
  for (const m of readme.matchAll(/`sfbridge ([a-z]+)[^`]*`/g)) shown.add(m[1]);
  assert.ok(shown.size >= 8, `commands shown: ${[...shown]}`);
  // where commands are run: tests, demo, rig and test runner scripts
  const files = [];
  const walk = (dir) => {
    for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (!["node_modules", "corpus"].includes(e.name)) walk(p);
      } else if (/\.(c|h|mjs)$/.test(e.name) || !e.name.includes(".")) files.push(p);
    }
  };
  walk("tests");
  const corpus = files
    .filter((f) => f !== path.join("tests", "node", "readme.test.mjs"))
    .map((f) => fs.readFileSync(path.join(root, f), "utf8"))
    .join("\n");
  for (const c of shown) {
    assert.ok(known.has(c), `README shows "sfbridge ${c}", which is not a command of workers/sfbridge/main.c`);
    const used = new RegExp(`sfbridge[" ]+(?:--json[" ]+)?${c}\\b|"sfbridge",\\s*"${c}"|/sfbridge ${c}\\b|sfbridge" ${c}\\b`);
    assert.match(corpus, used, `"sfbridge ${c}" is shown in the README but no test, demo or rig script runs it`);
  }
});

test("every make target shown exists", () => {
  const mk = read("Makefile");
  const targets = new Set([...mk.matchAll(/^([a-z][a-z-]*):/gm)].map((m) => m[1]));
  const shown = new Set();
  for (const m of readme.matchAll(/(?:^|[\s`=])make\s+([a-z][a-z-]*)\b/gm)) shown.add(m[1]);
  assert.ok(shown.has("demo") && shown.has("test") && shown.has("demo-down") && shown.has("bench"), [...shown].join(","));
  for (const t of shown) assert.ok(targets.has(t), `README shows "make ${t}", which the Makefile does not have`);
});

test("relative links and named scripts exist", () => {
  for (const m of readme.matchAll(/\]\(([^)#]+)\)/g)) {
    const target = m[1];
    if (/^[a-z]+:/.test(target) || target.startsWith("../")) continue; // URLs, the shared workspace
    assert.ok(fs.existsSync(path.join(root, target)), `link to ${target} points at nothing`);
  }
  for (const p of ["tests/rig/up", "tests/rig/down", "tests/rig/deps", "tests/demo/run", "tests/demo/down",
                   "tests/bench/run", "tests/readme/gen-config", "docker-compose.yml", ".env.example"]) {
    assert.ok(readme.includes(p.replace(/^tests\/demo\/down$/, "make demo-down")) || readme.includes(p), `README names ${p}`);
    assert.ok(fs.existsSync(path.join(root, p)), `${p} exists`);
  }
});

test("the sections a newcomer needs", () => {
  const headings = [...readme.matchAll(/^#{1,3} (.+)$/gm)].map((m) => m[1].toLowerCase());
  for (const h of ["two commands", "configuration", "topics and schemas", "the local rig", "the emulator alone",
                   "connecting a real salesforce org", "mappings", "scaling replicas", "replay and rebuild",
                   "limits and what happens at them", "search", "metrics and health", "troubleshooting"])
    assert.ok(headings.some((x) => x.includes(h)), `a section "${h}"`);
  for (const s of ["api refresh_token", "PKCE", "SF_LOGIN_URL", "Callback URL"])
    assert.ok(readme.includes(s), `the Salesforce section mentions ${s}`);
});
