// Checks schemas/*.schema.json with a real validator (ajv, JSON Schema 2020-12, strict mode):
// every schema compiles, every example in schemas/examples/valid validates, every example in
// schemas/examples/invalid fails, and fails at the field its .expect sidecar names (the same
// path the C validator must put in its error message, see tests/test_msg.c).
// Run: node --test tests/node/schemas.test.mjs   (from the repo root or tests/node)
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const schemaDir = path.join(root, "schemas");
const validDir = path.join(schemaDir, "examples", "valid");
const invalidDir = path.join(schemaDir, "examples", "invalid");

// strict: unknown keywords, unknown formats, ambiguous types are errors. Two deliberate
// relaxations: union types (["string","null"]) are part of the contract, and strictRequired
// is replaced by requiredDeclared() below, because ajv cannot see a property declared at the
// top when `required` sits in an if/then branch.
function newAjv() {
  const ajv = new Ajv2020({ strict: true, strictRequired: false, allowUnionTypes: true, allErrors: true });
  addFormats(ajv);
  return ajv;
}

const schemaFiles = fs.readdirSync(schemaDir).filter((f) => f.endsWith(".schema.json")).sort();
const topics = schemaFiles.map((f) => f.slice(0, -".schema.json".length));
const load = (file) => JSON.parse(fs.readFileSync(file, "utf8"));

// The example's topic is the longest schema topic its file name starts with.
function topicOf(file) {
  const t = topics.filter((x) => file.startsWith(x + ".")).sort((a, b) => b.length - a.length)[0];
  assert.ok(t, `${file}: no schema for this example's topic`);
  return t;
}

// "operations[0].fields['Bad \'x']" -> ["operations", "0", "fields", "Bad 'x"]
function parsePath(p) {
  if (p === "(root)") return [];
  const out = [];
  const re = /(?:^|\.)([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]/y;
  let m;
  while (re.lastIndex < p.length && (m = re.exec(p)) !== null) {
    out.push(m[1] ?? m[2] ?? m[3].replace(/\\x([0-9a-f]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16))).replace(/\\(.)/g, "$1"));
  }
  assert.equal(re.lastIndex, p.length, `cannot parse path ${JSON.stringify(p)}`);
  return out;
}

const pointer = (segs) => segs.map((s) => "/" + s.replace(/~/g, "~0").replace(/\//g, "~1")).join("");

// Where an ajv error points: the instance location, plus the property it is about.
function errorLocations(err) {
  const locs = [err.instancePath];
  const prop = err.params?.missingProperty ?? err.params?.additionalProperty ?? err.propertyName;
  if (prop !== undefined) locs.push(err.instancePath + pointer([prop]));
  return locs;
}

// Every name in a `required` must be declared in `properties` of the same schema object or of
// an enclosing one at the same instance level (catches typos in if/then branches).
function requiredDeclared(node, where, declared, problems) {
  if (Array.isArray(node)) {
    node.forEach((x, i) => requiredDeclared(x, `${where}/${i}`, declared, problems));
    return;
  }
  if (node === null || typeof node !== "object") return;
  const here = node.properties ? new Set([...(declared ?? []), ...Object.keys(node.properties)]) : declared;
  for (const r of node.required ?? []) {
    if (!here || !here.has(r)) problems.push(`${where}: required "${r}" is not declared in properties`);
  }
  for (const [k, v] of Object.entries(node)) {
    if (k === "properties" || k === "$defs") {
      for (const [pk, pv] of Object.entries(v)) requiredDeclared(pv, `${where}/${k}/${pk}`, undefined, problems);
    } else if (k !== "required" && k !== "enum" && k !== "const") {
      requiredDeclared(v, `${where}/${k}`, here, problems);
    }
  }
}

const EXPECTED_TOPICS = ["connection.status", "record.write", "record.written", "sync.completed",
  "sync.progress", "sync.requested", "token.refresh", "token.refreshed"];

test("there is one schema per message of DESIGN.md", () => {
  assert.deepEqual(topics, EXPECTED_TOPICS);
});

const validators = new Map();
for (const f of schemaFiles) {
  test(`${f} compiles in strict mode and declares what it requires`, () => {
    const schema = load(path.join(schemaDir, f));
    assert.equal(schema.$schema, "https://json-schema.org/draft/2020-12/schema");
    assert.match(schema.$id, new RegExp(`/${f.replace(/\./g, "\\.")}$`));
    assert.equal(schema.title, f.slice(0, -".schema.json".length));
    const problems = [];
    requiredDeclared(schema, "#", undefined, problems);
    assert.deepEqual(problems, []);
    const v = newAjv().compile(schema);
    validators.set(f.slice(0, -".schema.json".length), v);
  });
}

const validFiles = fs.readdirSync(validDir).filter((f) => f.endsWith(".json")).sort();
const invalidFiles = fs.readdirSync(invalidDir).filter((f) => f.endsWith(".json")).sort();

test("every message has at least 3 valid and 5 invalid examples", () => {
  for (const t of topics) {
    assert.ok(validFiles.filter((f) => topicOf(f) === t).length >= 3, `${t}: fewer than 3 valid examples`);
    assert.ok(invalidFiles.filter((f) => topicOf(f) === t).length >= 5, `${t}: fewer than 5 invalid examples`);
  }
});

for (const f of validFiles) {
  test(`valid/${f} validates`, () => {
    const v = validators.get(topicOf(f)) ?? newAjv().compile(load(path.join(schemaDir, topicOf(f) + ".schema.json")));
    const ok = v(load(path.join(validDir, f)));
    assert.ok(ok, JSON.stringify(v.errors, null, 1));
  });
}

for (const f of invalidFiles) {
  test(`invalid/${f} is rejected at the field its .expect names`, () => {
    const v = validators.get(topicOf(f)) ?? newAjv().compile(load(path.join(schemaDir, topicOf(f) + ".schema.json")));
    const expectFile = path.join(invalidDir, f.replace(/\.json$/, ".expect"));
    assert.ok(fs.existsSync(expectFile), `${f}: missing .expect sidecar`);
    const want = pointer(parsePath(fs.readFileSync(expectFile, "utf8").trim()));
    const ok = v(load(path.join(invalidDir, f)));
    assert.equal(ok, false, `${f} unexpectedly validates`);
    const where = v.errors.flatMap(errorLocations);
    assert.ok(where.includes(want), `${f}: no error at ${want}; ajv says ${JSON.stringify(v.errors, null, 1)}`);
  });
}

test("no .expect sidecar without its example", () => {
  for (const f of fs.readdirSync(invalidDir).filter((x) => x.endsWith(".expect"))) {
    assert.ok(fs.existsSync(path.join(invalidDir, f.replace(/\.expect$/, ".json"))), `${f} has no example`);
  }
});

// The bad-input corpus (tests/corpus/gen.mjs) is generated here, so that it exists before the
// C unit tests run (tests/run runs node tests first); tests/test_msg.c then checks that the C
// validator reaches the same verdict as ajv on every message.
test("the bad-input corpus generator writes >= 1000 messages of every kind", async () => {
  const { spawnSync } = await import("node:child_process");
  const out = path.join(root, "build", "corpus");
  const r = spawnSync(process.execPath, [path.join(root, "tests", "corpus", "gen.mjs"), "--out", out], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const index = JSON.parse(fs.readFileSync(path.join(out, "index.json"), "utf8"));
  assert.ok(index.count >= 1000, `only ${index.count} messages`);
  assert.equal(index.entries.length, index.count);
  for (const c of ["not_json", "truncated", "wrong_type", "missing_field", "unknown_enum", "invalid_uuid", "huge_string",
    "invalid_utf8", "deep_nesting", "injection", "delete", "tenant", "nul_escape"]) {
    assert.ok(index.by_category[c] > 0, `no ${c} messages`);
  }
  for (const t of ["sync.requested", "record.write", "token.refresh"]) assert.ok(index.by_topic[t] >= 200, `${t}: ${index.by_topic[t]}`);
  for (const e of index.entries) {
    assert.equal(fs.statSync(path.join(out, e.file)).size, e.bytes, e.file);
    assert.ok(e.expect === "dlq" || e.expect === "completion", e.file);
    assert.ok(e.reason, `${e.file}: no reason`);
  }
  assert.ok(index.entries.some((e) => e.bytes >= 5 * 1024 * 1024), "no 5 MB message");
  assert.ok(index.entries.filter((e) => e.category === "delete").every((e) => e.expect === "completion"), "deletes are schema-valid");
});
