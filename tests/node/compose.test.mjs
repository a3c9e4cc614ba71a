// Structure of docker-compose.yml, Dockerfile, .env.example and .dockerignore (they cannot be
// run on this machine: no container runtime). Parsed with a real YAML parser (yaml, with merge
// keys as compose applies them). Checks what an operator relies on:
//   - the services: Kafka from apache/kafka in KRaft mode (no ZooKeeper), PostgreSQL, a one-shot
//     migrate job running `sfbridge migrate` and `sfbridge topics create`, the four workers built
//     from the Dockerfile, the emulator under the `demo` profile;
//   - healthchecks on every long-running service, depends_on with conditions;
//   - every environment name given to an sfbridge container is in the configuration table
//     (common/cfg.c, cross-checked with `sfbridge config --markdown` when built), every
//     ${VAR} the file interpolates is in .env.example, and .env.example lists every variable of
//     the table with placeholders, never a real-looking secret;
//   - the Dockerfile: multi-stage on Debian bookworm, builds with make, runtime stage without
//     compilers or -dev packages, non-root user.
// Run: node --test tests/node/compose.test.mjs
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import YAML from "yaml";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const read = (f) => fs.readFileSync(path.join(root, f), "utf8");

const composeText = read("docker-compose.yml");
const compose = YAML.parse(composeText, { merge: true });
const services = compose.services ?? {};

// the configuration table, from the code
function configTable() {
  const src = read("common/cfg.c");
  const body = src.slice(src.indexOf("cfg_table[] = {"), src.indexOf("{NULL, NULL, NULL"));
  const names = [...body.matchAll(/\{"([A-Z][A-Z0-9_]+)",\s*"/g)].map((m) => m[1]);
  const secret = new Set([...body.matchAll(/\{"([A-Z][A-Z0-9_]+)",[^\n]*,\s*true\},/g)].map((m) => m[1]));
  return { names, secret };
}
const cfg = configTable();

function builtBinary() {
  for (const dir of [process.env.SFBRIDGE_BIN_DIR, path.join(root, "build", "bin")]) {
    if (dir && fs.existsSync(path.join(dir, "sfbridge"))) return path.join(dir, "sfbridge");
  }
  return null;
}

function parseEnvFile(text) {
  const vars = new Map();
  for (const line of text.split("\n")) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) vars.set(m[1], m[2]);
  }
  return vars;
}
const envExample = parseEnvFile(read(".env.example"));

const WORKERS = ["sfbridge-sync", "sfbridge-write", "sfbridge-token", "sfbridge-scheduler"];
const isSfbridgeImage = (s) => s.build !== undefined || /^sfbridge(:|$)/.test(s.image ?? "");
const commandText = (s) => (Array.isArray(s.command) ? s.command.join(" ") : String(s.command ?? ""));
const envKeys = (s) =>
  Array.isArray(s.environment) ? s.environment.map((e) => e.split("=")[0]) : Object.keys(s.environment ?? {});

test("the configuration table is found in common/cfg.c and matches the binary", () => {
  assert.ok(cfg.names.length >= 10, `cfg_table parsed: ${cfg.names}`);
  for (const n of ["SFBRIDGE_PG_DSN", "SFBRIDGE_KAFKA_BROKERS", "SFBRIDGE_TOKEN_KEY", "SF_LOGIN_URL", "SFBRIDGE_METRICS_ADDR"])
    assert.ok(cfg.names.includes(n), `${n} in cfg_table`);
  assert.ok(cfg.secret.has("SF_CLIENT_SECRET") && cfg.secret.has("SFBRIDGE_TOKEN_KEY"), "secret flags parsed");
  const bin = builtBinary();
  if (bin) {
    const md = execFileSync(bin, ["config", "--markdown"], { encoding: "utf8" });
    const fromBin = [...md.matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1]);
    assert.deepEqual(fromBin, cfg.names, "sfbridge config --markdown lists the same variables as cfg.c");
  }
});

test("services: Kafka (apache/kafka, KRaft), PostgreSQL, migrate, four workers, emulator in demo profile", () => {
  const kafka = services.kafka;
  assert.ok(kafka, "a kafka service");
  assert.match(kafka.image, /^apache\/kafka:\d/, "Kafka from the apache/kafka image, pinned");
  assert.match(String(kafka.environment.KAFKA_PROCESS_ROLES), /broker/);
  assert.match(String(kafka.environment.KAFKA_PROCESS_ROLES), /controller/, "KRaft: the node is its own controller");
  assert.ok(kafka.environment.KAFKA_CONTROLLER_QUORUM_VOTERS, "KRaft quorum voters");
  assert.ok(kafka.environment.CLUSTER_ID, "KRaft cluster id");
  assert.ok(!Object.keys(services).some((n) => /zookeeper/i.test(n)), "no ZooKeeper");
  assert.ok(!Object.keys(kafka.environment).some((k) => /ZOOKEEPER/.test(k)), "no ZooKeeper settings");
  assert.equal(String(kafka.environment.KAFKA_AUTO_CREATE_TOPICS_ENABLE), "false", "topics are created by migrate");

  const pg = services.postgres;
  assert.ok(pg, "a postgres service");
  assert.match(pg.image, /^postgres:1[5-9]/, "PostgreSQL 15+");
  assert.ok(pg.volumes?.length, "PostgreSQL data on a volume");

  const mig = services.migrate;
  assert.ok(mig && isSfbridgeImage(mig), "a migrate service from the sfbridge image");
  assert.match(commandText(mig), /sfbridge migrate/);
  assert.match(commandText(mig), /sfbridge topics create/);
  assert.equal(String(mig.restart), "no", "migrate is one-shot");

  for (const w of WORKERS) {
    const s = services[w];
    assert.ok(s, `service ${w}`);
    assert.equal(s.build?.dockerfile ?? "Dockerfile", "Dockerfile", `${w} is built from the Dockerfile`);
    assert.ok(s.build, `${w} has a build section`);
    assert.match(commandText(s), new RegExp(`^${w}\\b`), `${w} runs its binary`);
    assert.equal(s.container_name, undefined, `${w} has no container_name, so --scale works`);
    assert.equal(s.ports, undefined, `${w} publishes no host port, so --scale works`);
    assert.ok(s.profiles === undefined, `${w} runs without a profile`);
  }

  const sim = services.sfsim;
  assert.ok(sim, "an sfsim service");
  assert.deepEqual(sim.profiles, ["demo"], "the emulator only under the demo profile");
  assert.match(commandText(sim), /\bsfsim\b/);
  for (const [name, s] of Object.entries(services))
    if (name !== "sfsim" && name !== "demo-certs") assert.equal(s.profiles, undefined, `${name} has no profile`);
});

test("healthchecks on every long-running service", () => {
  for (const [name, s] of Object.entries(services)) {
    if (String(s.restart) === "no") continue; // one-shot jobs
    assert.ok(s.healthcheck?.test, `${name} has a healthcheck`);
    const t = Array.isArray(s.healthcheck.test) ? s.healthcheck.test : [s.healthcheck.test];
    assert.ok(["CMD", "CMD-SHELL"].includes(t[0]), `${name}: healthcheck test is CMD or CMD-SHELL`);
  }
  for (const w of WORKERS) {
    const t = services[w].healthcheck.test.join(" ");
    assert.match(t, /:9100\/(readyz|healthz)/, `${w} is checked on its metrics port`);
    assert.equal(services[w].environment.SFBRIDGE_METRICS_ADDR, "0.0.0.0:9100", `${w} serves metrics on 9100`);
  }
  assert.match(services.postgres.healthcheck.test.join(" "), /pg_isready/);
  assert.match(services.kafka.healthcheck.test.join(" "), /kafka-(broker-api-versions|topics)/);
});

test("depends_on with conditions: postgres/kafka healthy -> migrate completed -> workers", () => {
  const conds = (s) => s.depends_on ?? {};
  assert.ok(!Array.isArray(conds(services.migrate)), "migrate: depends_on with conditions");
  assert.equal(conds(services.migrate).postgres?.condition, "service_healthy");
  assert.equal(conds(services.migrate).kafka?.condition, "service_healthy");
  for (const w of WORKERS) {
    const d = conds(services[w]);
    assert.ok(!Array.isArray(d), `${w}: depends_on with conditions`);
    assert.equal(d.migrate?.condition, "service_completed_successfully", `${w} waits for migrate`);
    assert.equal(d.postgres?.condition, "service_healthy", `${w} waits for postgres`);
    assert.equal(d.kafka?.condition, "service_healthy", `${w} waits for kafka`);
  }
  for (const [name, s] of Object.entries(services))
    for (const [dep, c] of Object.entries(Array.isArray(s.depends_on) ? {} : s.depends_on ?? {})) {
      assert.ok(services[dep], `${name} depends on an existing service ${dep}`);
      assert.ok(
        ["service_healthy", "service_completed_successfully", "service_started"].includes(c.condition),
        `${name} -> ${dep} has a condition`,
      );
      if (services[dep].profiles) assert.deepEqual(s.profiles, services[dep].profiles, `${name} -> ${dep}: same profile`);
    }
});

test("environment names of sfbridge containers are in the configuration table", () => {
  let checked = 0;
  for (const [name, s] of Object.entries(services)) {
    if (!isSfbridgeImage(s) || name === "sfsim" || name === "demo-certs") continue;
    const keys = envKeys(s);
    assert.ok(keys.length > 0, `${name} gets its configuration from the environment`);
    for (const k of keys) {
      assert.ok(cfg.names.includes(k), `${name}: ${k} is not in the configuration table (common/cfg.c)`);
      checked++;
    }
    for (const must of ["SFBRIDGE_PG_DSN", "SFBRIDGE_KAFKA_BROKERS", "SFBRIDGE_TOKEN_KEY", "SF_LOGIN_URL"])
      assert.ok(keys.includes(must), `${name} sets ${must}`);
  }
  assert.ok(checked >= 5 * 10, `checked ${checked} names`);
});

test("every interpolated ${VAR} is documented in .env.example; secrets are required, not defaulted", () => {
  const used = new Set([...composeText.matchAll(/\$\{([A-Z][A-Z0-9_]*)/g)].map((m) => m[1]));
  assert.ok(used.size > 5);
  for (const v of used) assert.ok(envExample.has(v), `\${${v}} used in docker-compose.yml but not in .env.example`);
  for (const v of ["SFBRIDGE_TOKEN_KEY", "SF_CLIENT_SECRET", "POSTGRES_PASSWORD"])
    assert.match(composeText, new RegExp(`\\$\\{${v}:\\?`), `${v} must be required (\${${v}:?...}), never defaulted`);
});

test(".env.example lists every configuration variable with safe placeholders", () => {
  for (const n of cfg.names) assert.ok(envExample.has(n), `.env.example lacks ${n}`);
  for (const n of cfg.secret) {
    const v = envExample.get(n);
    assert.ok(v === "" || /change-me/.test(v), `${n} must be empty or a change-me placeholder, not "${v}"`);
  }
  assert.match(envExample.get("POSTGRES_PASSWORD"), /change-me/);
  // nothing in it looks like a live credential
  const text = read(".env.example");
  assert.doesNotMatch(text, /00D[A-Za-z0-9]{12,}!|5Aep[A-Za-z0-9.]{20,}/, "no Salesforce tokens");
  assert.doesNotMatch(text, /^SFBRIDGE_TOKEN_KEY=[A-Za-z0-9+/]{43}=$/m, "no real token key");
});

test("Dockerfile: multi-stage Debian bookworm build with make, slim non-root runtime", () => {
  const df = read("Dockerfile");
  const stages = df.split(/^FROM\s+/m).slice(1);
  assert.ok(stages.length >= 2, "multi-stage");
  for (const s of stages) assert.match(s, /^debian:bookworm/, "every stage on Debian bookworm");
  const build = stages[0];
  const runtime = stages[stages.length - 1];
  assert.match(build, /-dev\b/, "the build stage installs the -dev packages");
  assert.match(build, /^RUN\s+make\b/m, "the build stage builds with make");
  assert.match(runtime, /COPY\s+--from=\S+\s+\S*build\/bin/, "the runtime stage copies the built binaries");
  assert.doesNotMatch(runtime, /-dev\b|build-essential|\bgcc\b|\bclang\b/, "no compilers or -dev packages at runtime");
  for (const lib of ["librdkafka1", "libcurl4", "libjson-c5", "libpq5", "libssl3", "libmicrohttpd12"])
    assert.match(runtime, new RegExp(`\\b${lib}\\b`), `runtime library ${lib}`);
  const user = /^USER\s+(\S+)/m.exec(runtime);
  assert.ok(user, "the runtime stage sets USER");
  assert.doesNotMatch(user[1], /^(root|0)(:|$)/, "not root");
  // what the build copies exists in the repo
  for (const m of build.matchAll(/^COPY\s+(?!--)(\S+)/gm))
    assert.ok(fs.existsSync(path.join(root, m[1])), `COPY source ${m[1]} exists`);
});

test(".dockerignore keeps build output, caches, node_modules and .env out of the context", () => {
  const lines = read(".dockerignore").split("\n").map((l) => l.trim());
  for (const p of [".git", "build/", ".cache/", ".env"]) assert.ok(lines.includes(p), `.dockerignore has ${p}`);
  assert.ok(lines.some((l) => /node_modules/.test(l)), ".dockerignore has node_modules");
  // and nothing the Dockerfile copies is ignored
  const df = read("Dockerfile");
  for (const m of df.matchAll(/^COPY\s+(?!--)(\S+)/gm)) {
    const src = m[1].replace(/\/$/, "");
    assert.ok(!lines.includes(src) && !lines.includes(src + "/"), `${src} is copied but ignored`);
  }
});
