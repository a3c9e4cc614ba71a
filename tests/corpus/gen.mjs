#!/usr/bin/env node
// Bad-input corpus for the consumed topics (issue 7, item 4), generated from schemas/ and the
// valid examples in schemas/examples/valid.
//
//   node tests/corpus/gen.mjs [--out build/corpus] [--seed 1]
//
// Writes one raw message per file, build/corpus/<topic>/NNNN.bin, and build/corpus/index.json:
//   {"generated_by", "seed", "count", "by_topic", "by_category",
//    "entries": [{"file", "topic", "category", "description", "bytes", "expect", "reason"}]}
// `expect` is what a consumer must do with the message:
//   "dlq"        it cannot be parsed or fails its schema: DLQ with an error header, no completion;
//   "completion" it is schema-valid but hostile or refused (delete, unknown org/connection,
//                injection attempts in values, unmapped objects): exactly one completion event,
//                nothing unsafe sent to Salesforce.
// `reason` says why: for "dlq" the first rule it breaks (size, UTF-8, JSON, nesting, or the ajv
// error), for "completion" what the worker must do. The verdict comes from the same checks the
// C side makes (1 MiB limit, strict UTF-8 without NUL bytes, nesting <= 64, the schema via ajv),
// so tests can compare the C validator against it. Deterministic for a given seed.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const require = createRequire(path.join(root, "tests", "node", "package.json"));
const Ajv2020 = require("ajv/dist/2020.js").default ?? require("ajv/dist/2020.js");
const addFormats = require("ajv-formats").default ?? require("ajv-formats");

const TOPICS = ["sync.requested", "record.write", "token.refresh"];
const MAX_BYTES = 1024 * 1024;
const MAX_DEPTH = 64;
const HUGE = 5 * 1024 * 1024;
const MAIN_BASE = { "sync.requested": "incremental", "record.write": "meeting-notes-bundle", "token.refresh": "refresh-token" };

function parseArgs(argv) {
  const o = { out: path.join(root, "build", "corpus"), seed: 1 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--out") o.out = path.resolve(argv[++i]);
    else if (argv[i] === "--seed") o.seed = Number(argv[++i]);
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  return o;
}

// mulberry32: small deterministic PRNG
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const clone = (x) => JSON.parse(JSON.stringify(x));
const enc = (s) => Buffer.from(s, "utf8");
const json = (o) => enc(JSON.stringify(o));

// nesting depth of a JSON text (brackets outside strings); a scan, so 100k levels are fine
function depthOf(text) {
  let d = 0, max = 0, inStr = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inStr) {
      if (c === "\\") i++;
      else if (c === "\"") inStr = false;
    } else if (c === "\"") inStr = true;
    else if (c === "[" || c === "{") max = Math.max(max, ++d);
    else if (c === "]" || c === "}") d--;
  }
  return max;
}

// leaf paths of a document: [["operations",0,"ref"], ...]
function leaves(v, p = [], out = []) {
  if (v !== null && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) leaves(x, [...p, Array.isArray(v) ? Number(k) : k], out);
    if (Object.keys(v).length === 0) out.push(p);
  } else out.push(p);
  return out;
}
const getAt = (o, p) => p.reduce((x, k) => x[k], o);
function setAt(o, p, v) {
  const c = clone(o);
  if (p.length === 0) return v;
  getAt(c, p.slice(0, -1))[p[p.length - 1]] = v;
  return c;
}
function delAt(o, p) {
  const c = clone(o);
  const parent = getAt(c, p.slice(0, -1));
  if (Array.isArray(parent)) parent.splice(p[p.length - 1], 1);
  else delete parent[p[p.length - 1]];
  return c;
}
const show = (p) => p.map((k) => (typeof k === "number" ? `[${k}]` : `.${k}`)).join("").replace(/^\./, "") || "(root)";

// Splice raw bytes into the first string value of `field` in the serialised document.
function spliceIntoString(doc, field, raw) {
  const marker = "\u0001MARK\u0001";
  const d = clone(doc);
  d[field] = marker + (typeof d[field] === "string" ? d[field] : "");
  const text = JSON.stringify(d);
  const at = text.indexOf(JSON.stringify(marker).slice(1, -1));
  const before = enc(text.slice(0, at)), after = enc(text.slice(at + JSON.stringify(marker).length - 2));
  return Buffer.concat([before, raw, after]);
}

function main() {
  const opt = parseArgs(process.argv.slice(2));
  const rnd = prng(opt.seed);
  const pick = (xs) => xs[Math.floor(rnd() * xs.length)];
  const ajv = new Ajv2020({ strict: true, strictRequired: false, allowUnionTypes: true });
  addFormats(ajv);
  const validators = {}, schemas = {}, bases = {};
  for (const t of TOPICS) {
    schemas[t] = JSON.parse(fs.readFileSync(path.join(root, "schemas", `${t}.schema.json`), "utf8"));
    validators[t] = ajv.compile(schemas[t]);
    const dir = path.join(root, "schemas", "examples", "valid");
    // the first base is the richest example: most mutations start from it
    bases[t] = fs.readdirSync(dir).filter((f) => f.startsWith(t + ".")).sort()
      .sort((a, b) => (b === `${t}.${MAIN_BASE[t]}.json`) - (a === `${t}.${MAIN_BASE[t]}.json`))
      .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")));
    if (bases[t].length === 0 || !bases[t][0].message_id) throw new Error(`no valid examples for ${t}`);
  }

  function verdict(topic, bytes) {
    if (bytes.length > MAX_BYTES) return ["dlq", `too large: ${bytes.length} bytes`];
    let text;
    try {
      text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
    } catch {
      return ["dlq", "not valid UTF-8"];
    }
    if (text.includes("\u0000")) return ["dlq", "raw NUL byte"];
    if (bytes.length === 0) return ["dlq", "empty"];
    if (/(^|[^\\])(\\\\)*\\u0000/.test(text)) return ["dlq", "escaped NUL (\\u0000): refused by msg_parse"];
    if (depthOf(text) > MAX_DEPTH) return ["dlq", `nesting deeper than ${MAX_DEPTH}`];
    let doc;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      return ["dlq", `not JSON: ${e.message}`];
    }
    if (!validators[topic](doc)) {
      const er = validators[topic].errors[0];
      return ["dlq", `schema: ${er.instancePath || "(root)"} ${er.message}`];
    }
    return ["completion", null];
  }

  const entries = [];
  const counters = Object.fromEntries(TOPICS.map((t) => [t, 0]));
  fs.rmSync(opt.out, { recursive: true, force: true });
  for (const t of TOPICS) fs.mkdirSync(path.join(opt.out, t), { recursive: true });

  // completionNote: for schema-valid entries, what the worker must do with them
  function add(topic, category, description, bytes, completionNote) {
    const n = ++counters[topic];
    const file = `${topic}/${String(n).padStart(4, "0")}.bin`;
    fs.writeFileSync(path.join(opt.out, file), bytes);
    let [expect, reason] = verdict(topic, bytes);
    if (expect === "completion") {
      reason = completionNote ?? "schema-valid: the worker must answer with exactly one completion event";
    }
    entries.push({ file, topic, category, description, bytes: bytes.length, expect, reason });
  }

  const NOT_JSON = [
    "", " ", "\n", "{", "}", "[", "{\"", "nul", "undefined", "NaN", "Infinity", "-Infinity",
    "{'message_id':'x'}", "{message_id:1}", "<sync mode=\"full\"/>", "SELECT Id FROM Account",
    "{\"a\":1}}", "{\"a\":1,}", "[1,2,]", "\"unterminated", "{\"a\":01}", "{\"a\":.5}", "{\"a\":+1}",
    "{\"a\":0x10}", "// comment\n{}", "{} {}", "{}\u0000", "\ufeff{}", "{\"a\":\"\\x41\"}",
    "{\"a\":\"\\u12\"}", "{\"a\":\"tab\there\"}", "{\"a\":\"line\nbreak\"}", "{\"a\" 1}", "{\"a\":tru}",
    "{\"a\":nulll}", "[\"a\" \"b\"]", "{,}", "{\"a\":-}", "{\"a\":1e}", "{\"a\":\"\\'\"}",
  ];

  const BAD_UUIDS = [
    "", "0", "not-a-uuid", "8d3f6b2a1c4e4a9bb7d52e8f0a6c1b93", "{8d3f6b2a-1c4e-4a9b-b7d5-2e8f0a6c1b93}",
    "urn:uuid:8d3f6b2a-1c4e-4a9b-b7d5-2e8f0a6c1b93", "8d3f6b2a-1c4e-4a9b-b7d5-2e8f0a6c1b9",
    "8d3f6b2a-1c4e-4a9b-b7d5-2e8f0a6c1b933", "8d3f6b2g-1c4e-4a9b-b7d5-2e8f0a6c1b93",
    " 8d3f6b2a-1c4e-4a9b-b7d5-2e8f0a6c1b93", "8d3f6b2a-1c4e-4a9b-b7d5-2e8f0a6c1b93\n",
    "8d3f6b2a_1c4e_4a9b_b7d5_2e8f0a6c1b93", "８d3f6b2a-1c4e-4a9b-b7d5-2e8f0a6c1b93",
    "8d3f6b2a-1c4e-4a9b-b7d5-2e8f0a6c1b9\u0000", "' OR '1'='1", "00000000-0000-0000-0000-0000000000000",
  ];
  const UUID_FIELDS = { "sync.requested": ["message_id", "connection_id"], "record.write": ["message_id", "connection_id"],
    "token.refresh": ["message_id", "connection_id"] };
  const BAD_UTF8 = [
    [0xc3, 0x28], [0xa0, 0xa1], [0xe2, 0x28, 0xa1], [0xe2, 0x82], [0xf0, 0x28, 0x8c, 0xbc], [0xf0, 0x90, 0x28, 0xbc],
    [0xc0, 0xaf], [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf], [0xf4, 0x90, 0x80, 0x80],
    [0xf8, 0x88, 0x80, 0x80, 0x80], [0xff], [0xfe], [0x80], [0xc3], [0x00],
  ];
  const BAD_ENUMS = ["", "FULL", "full ", " incremental", "Incremental", "delete_all", "créer", "null", "x".repeat(300),
    "create\u0000", "upsert;", "*"];
  const WRONG_TYPES = [42, -1.5, true, false, null, "s", [], {}, [1, 2], { a: 1 }, 1e300];
  const INJECT_VALUES = ["' OR Name LIKE '%", "\\' OR 1=1 --", "x' AND Id != '", "%' OR '1'='1",
    "'; DELETE FROM contacts; --", "\\", "a\\nb", "') OR (Name != '", "_%", "Robert'); DROP TABLE audit_log;--"];
  const INJECT_NAMES = ["Email) FROM Contact--", "Name,Password__c", "Id FROM User WHERE Id != null", "a b", "a'b",
    "__proto__", "Name--", "Email\nFROM", "Name; DROP TABLE companies", "1=1", "Name__c)", "Ёmail"];

  for (const topic of TOPICS) {
    const base = bases[topic][0];
    const required = schemas[topic].required;

    // not JSON at all
    for (const s of NOT_JSON) add(topic, "not_json", `not JSON: ${JSON.stringify(s).slice(0, 40)}`, enc(s));
    for (let i = 0; i < 8; i++) {
      const b = Buffer.alloc(1 + Math.floor(rnd() * 512));
      for (let j = 0; j < b.length; j++) b[j] = Math.floor(rnd() * 256);
      add(topic, "not_json", `random bytes (${b.length})`, b);
    }
    // JSON, but not an object
    for (const v of [[], [base], "sync", 123, -1, true, null, 1e400])
      add(topic, "wrong_type", `top level is ${JSON.stringify(v)?.slice(0, 20)}`, enc(String(JSON.stringify(v) ?? v)));

    // truncated valid messages
    for (const b of bases[topic]) {
      const bytes = json(b);
      const cuts = new Set([1, 2, Math.floor(bytes.length / 2), bytes.length - 1, bytes.length - 2]);
      while (cuts.size < 14) cuts.add(1 + Math.floor(rnd() * (bytes.length - 1)));
      for (const c of [...cuts].sort((x, y) => x - y)) add(topic, "truncated", `valid example cut at byte ${c} of ${bytes.length}`, bytes.subarray(0, c));
    }

    // missing fields, top level and (record.write) per operation
    for (const b of bases[topic]) {
      for (const r of required) if (r in b) add(topic, "missing_field", `no ${r}`, json(delAt(b, [r])));
    }
    if (topic === "record.write") {
      for (const r of ["ref", "object", "action", "fields"]) {
        for (let i = 0; i < base.operations.length; i++) add(topic, "missing_field", `no operations[${i}].${r}`, json(delAt(base, ["operations", i, r])));
      }
      const upd = bases[topic].find((b) => b.operations.some((o) => o.action === "update"));
      const i = upd.operations.findIndex((o) => o.action === "update");
      add(topic, "missing_field", `update without id (operations[${i}].id)`, json(delAt(upd, ["operations", i, "id"])));
    }
    if (topic === "token.refresh") {
      const code = bases[topic].find((b) => b.grant === "authorization_code");
      add(topic, "missing_field", "authorization_code without code", json(delAt(code, ["code"])));
      add(topic, "missing_field", "authorization_code without state", json(delAt(code, ["state"])));
      add(topic, "missing_field", "refresh_token without connection_id", json(delAt(bases[topic].find((b) => b.grant === "refresh_token"), ["connection_id"])));
    }

    // wrong types at every leaf of every example
    for (const b of bases[topic]) {
      const ls = leaves(b).filter((p) => p.length > 0);
      for (const p of ls) {
        const cur = getAt(b, p);
        const choices = WRONG_TYPES.filter((v) => typeof v !== typeof cur || (v === null) !== (cur === null) || Array.isArray(v) !== Array.isArray(cur));
        for (let k = 0; k < 2; k++) {
          const v = pick(choices);
          add(topic, "wrong_type", `${show(p)} = ${JSON.stringify(v)}`, json(setAt(b, p, v)));
        }
      }
    }

    // unknown enum values
    const enumPaths = { "sync.requested": [["mode"]], "token.refresh": [["grant"]],
      "record.write": [["source"], ["operations", 0, "object"], ["operations", 0, "action"], ["operations", 4, "object"]] }[topic];
    for (const p of enumPaths) for (const v of BAD_ENUMS) add(topic, "unknown_enum", `${show(p)} = ${JSON.stringify(v).slice(0, 30)}`, json(setAt(base, p, v)));

    // invalid UUIDs
    for (const f of UUID_FIELDS[topic]) for (const u of BAD_UUIDS) add(topic, "invalid_uuid", `${f} = ${JSON.stringify(u)}`, json(setAt(base, [f], u)));
    for (const f of ["created_at"]) {
      for (const d of ["2026-02-30T00:00:00Z", "2026-12-03 19:30:00Z", "2026-12-03T19:30:00", "yesterday", "1733254200",
        "2026-12-03T25:00:00Z", "2026-12-03T19:30:00+0100", ""]) add(topic, "invalid_date_time", `${f} = ${JSON.stringify(d)}`, json(setAt(base, [f], d)));
    }

    // huge strings: 5 MB (over the message limit) and just over each field's maxLength
    const hugeField = { "sync.requested": "requested_by", "record.write": "actor", "token.refresh": "state" }[topic];
    add(topic, "huge_string", `${hugeField} of 5 MB`, json(setAt(base, [hugeField], "x".repeat(HUGE))));
    add(topic, "huge_string", `org_id of 5 MB`, json(setAt(base, ["org_id"], "o".repeat(HUGE))));
    add(topic, "huge_string", `${hugeField} of 900 KB (under the size limit, over maxLength)`, json(setAt(base, [hugeField], "é".repeat(450 * 1024))));
    for (const [p, n] of { "sync.requested": [[["requested_by"], 256], [["org_id"], 65], [["objects", 0], 81]],
      "record.write": [[["actor"], 256], [["org_id"], 65], [["operations", 0, "ref"], 65], [["operations", 5, "fields", "notes"], 32769],
        [["operations", 0, "match", "website"], 256]],
      "token.refresh": [[["org_id"], 65], [["requested_by"], 256]] }[topic]) {
      add(topic, "huge_string", `${show(p)} of ${n} characters`, json(setAt(base, p, "é".repeat(n))));
    }
    if (topic === "token.refresh") {
      const code = bases[topic].find((b) => b.grant === "authorization_code");
      add(topic, "huge_string", "code of 2049 characters", json(setAt(code, ["code"], "c".repeat(2049))));
      add(topic, "huge_string", "state of 256 characters", json(setAt(code, ["state"], "s".repeat(256))));
    }

    // invalid UTF-8 inside a string value
    for (const seq of BAD_UTF8) add(topic, "invalid_utf8", `bytes ${Buffer.from(seq).toString("hex")} in org_id`, spliceIntoString(base, "org_id", Buffer.from(seq)));
    for (const seq of BAD_UTF8.slice(0, 6)) add(topic, "invalid_utf8", `bytes ${Buffer.from(seq).toString("hex")} in a free-text field`,
      spliceIntoString(base, { "sync.requested": "requested_by", "record.write": "actor", "token.refresh": "requested_by" }[topic], Buffer.from(seq)));

    // deep nesting, at the top level and inside a value
    for (const d of [63, 64, 65, 100, 1000, 100000]) {
      add(topic, "deep_nesting", `${d} nested arrays as a value of an extra property`,
        Buffer.concat([enc(JSON.stringify(base).slice(0, -1) + ",\"x\":"), Buffer.alloc(d, "["), Buffer.alloc(d, "]"), enc("}")]));
      add(topic, "deep_nesting", `${d} nested objects`, enc("{\"a\":".repeat(d) + "1" + "}".repeat(d)));
    }

    // escaped NUL characters: json-c cuts keys there, PostgreSQL cannot store them
    add(topic, "nul_escape", "\\u0000 inside org_id", enc(JSON.stringify(base).replace(`"org_id":"${base.org_id}"`, `"org_id":"${base.org_id}\\u0000x"`)));
    add(topic, "nul_escape", "\\u0000 inside an extra key that json-c would cut to a known one",
      enc(JSON.stringify(base).slice(0, -1) + `,"org_id\\u0000":"org_other"}`));
    const textField = { "sync.requested": "requested_by", "record.write": "actor", "token.refresh": "requested_by" }[topic];
    add(topic, "nul_escape", `an escaped backslash followed by u0000 in ${textField} (no NUL)`,
      json(setAt(base, [textField], "C:\\u0000")), "schema-valid: a backslash and the text u0000, not a NUL");

    // extra properties, duplicate keys, numbers json-c and JavaScript see differently
    for (const [k, v] of [["access_token", "00Dxx0000001gPL!AR8AQJXg5oj8jXSgxJfA0lBog"], ["priority", 1], ["__proto__", { admin: true }],
      ["org", base.org_id], ["Message_Id", base.message_id]]) {
      add(topic, "extra_property", `extra top-level ${k}`, enc(JSON.stringify(base).slice(0, -1) + `,${JSON.stringify(k)}:${JSON.stringify(v)}}`));
    }
    const enumKey = { "sync.requested": "mode", "record.write": "source", "token.refresh": "grant" }[topic];
    add(topic, "duplicate_key", `${enumKey} twice, the last one bad`, enc(JSON.stringify(base).slice(0, -1) + `,"${enumKey}":"bogus"}`));
    add(topic, "duplicate_key", `${enumKey} twice, the last one good`, enc(`{"${enumKey}":"bogus",` + JSON.stringify(base).slice(1)));
    add(topic, "duplicate_key", "org_id twice: another org last", enc(JSON.stringify(base).slice(0, -1) + ",\"org_id\":\"org_other\"}"),
      "schema-valid (the last org_id wins in every parser): the worker must check that connection_id belongs to that org (FORBIDDEN)");

    // schema-valid hostile jobs: unknown org / connection, another org's connection
    for (const [org, conn, what] of [["org_does_not_exist", base.connection_id ?? "6f1c2a9e-3b7d-4c58-9e21-7a4d0b3c8f15", "unknown org"],
      [base.org_id, "00000000-0000-4000-8000-000000000000", "unknown connection"],
      ["org_other", base.connection_id ?? "6f1c2a9e-3b7d-4c58-9e21-7a4d0b3c8f15", "a connection of another org"]]) {
      const d = clone(base);
      d.org_id = org;
      if (topic !== "token.refresh" || d.connection_id) d.connection_id = conn;
      add(topic, "tenant", `${what} (${org} / ${conn})`, json(d),
        `schema-valid: a failed completion (${what === "unknown org" ? "NOT_FOUND or INTEGRATION_DISABLED" : what === "unknown connection" ? "NOT_FOUND" : "FORBIDDEN"}), zero requests to Salesforce`);
    }
  }

  // injection attempts
  const sr = bases["sync.requested"][0];
  for (const name of [...INJECT_NAMES, "User", "Account__History", "LoginHistory"]) {
    add("sync.requested", "injection", `object name ${JSON.stringify(name)}`, json({ ...sr, objects: [name] }),
      "schema-valid only for plain identifiers: the worker must refuse objects without an enabled mapping (MAPPING_REQUIRED) and send no query for them");
  }
  for (const v of INJECT_VALUES) add("sync.requested", "injection", `requested_by ${JSON.stringify(v)}`, json({ ...sr, requested_by: v }),
    "schema-valid: free text, stored with query parameters only");
  const bundle = bases["record.write"].find((b) => b.source === "meeting_notes");
  for (const v of INJECT_VALUES) {
    add("record.write", "injection", `match value ${JSON.stringify(v)}`, json(setAt(bundle, ["operations", 0, "match", "website"], v)),
      "schema-valid: the SOQL literal must be escaped (the emulator's request log must show the escaped value)");
    add("record.write", "injection", `field value ${JSON.stringify(v)}`, json(setAt(bundle, ["operations", 1, "fields", "last_name"], v)),
      "schema-valid: sent as a JSON value, never spliced into SOQL or SQL");
  }
  add("record.write", "nul_escape", "\\u0000 inside a field name (json-c would see \"name\")",
    enc(JSON.stringify(bundle).replace('"name":"Northwind Analytics"', '"name\\u0000; DROP TABLE companies":"Northwind Analytics"')));
  add("record.write", "nul_escape", "\\u0000 inside a field value", enc(JSON.stringify(bundle).replace('"title":"CFO"', '"title":"CFO\\u0000"')));
  for (const n of INJECT_NAMES) {
    const d = clone(bundle);
    d.operations[1].fields[n] = "x";
    add("record.write", "injection", `field name ${JSON.stringify(n)}`, json(d));
    const m = clone(bundle);
    m.operations[3].match = { [n]: "x" };
    add("record.write", "injection", `match field name ${JSON.stringify(n)}`, json(m));
  }
  add("record.write", "injection", "unmapped but well-formed field name", json(setAt(bundle, ["operations", 1, "fields", "Password__c"], "x")),
    "schema-valid: a field without an export mapping is an error naming it, not sent");
  for (const n of ["1e400", "-1e400", "1e-400", "99999999999999999999", "-0"]) {
    add("record.write", "numbers", `field value ${n}`, enc(JSON.stringify(bundle).replace("\"employees\":240", `"employees":${n}`)));
  }

  // deletes: valid messages that must be refused
  const del = bases["record.write"].find((b) => b.operations.some((o) => o.action === "delete"));
  const refuse = "schema-valid: record.written failed, DELETE_NOT_SUPPORTED, an audit row (refused), zero requests to Salesforce";
  add("record.write", "delete", "one delete", json(del), refuse);
  for (const obj of ["Company", "Deal", "Activity"]) add("record.write", "delete", `delete a ${obj}`, json(setAt(del, ["operations", 0, "object"], obj)), refuse);
  add("record.write", "delete", "a delete hidden after a create in an all-or-none bundle",
    json({ ...bundle, operations: [...bundle.operations, { ...del.operations[0], ref: "sneaky" }] }),
    "schema-valid: the whole bundle fails (all_or_none), DELETE_NOT_SUPPORTED names ref sneaky, nothing is sent");
  add("record.write", "delete", "200 deletes", json({ ...del, operations: Array.from({ length: 200 }, (_, i) => ({ ...del.operations[0], ref: `d${i}` })) }), refuse);

  const byTopic = {}, byCategory = {};
  for (const e of entries) {
    byTopic[e.topic] = (byTopic[e.topic] ?? 0) + 1;
    byCategory[e.category] = (byCategory[e.category] ?? 0) + 1;
  }
  const index = { generated_by: "tests/corpus/gen.mjs", seed: opt.seed, count: entries.length, by_topic: byTopic,
    by_category: byCategory, expect: { dlq: entries.filter((e) => e.expect === "dlq").length,
      completion: entries.filter((e) => e.expect === "completion").length }, entries };
  fs.writeFileSync(path.join(opt.out, "index.json"), JSON.stringify(index, null, 1) + "\n");
  return index;
}

const index = main();
console.log(`corpus: ${index.count} messages (${index.expect.dlq} dlq, ${index.expect.completion} completion)`);
console.log(JSON.stringify(index.by_category));
