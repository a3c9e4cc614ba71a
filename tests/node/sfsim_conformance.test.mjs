// Conformance of the Salesforce emulator with a real, widely used client:
// jsforce drives OAuth2 (authorize + PKCE, requestToken, refresh), query with
// autoFetch/maxFetch, queryAll, sObject CRUD + upsert, a 200-record
// collection, composite with a reference, describe, limits and Bulk 2.0,
// and the FSC Interaction/InteractionAttendee objects through the same calls.
// Run: node --test tests/node/   (cwd = repo root; SFSIM_BIN overrides the binary)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import jsforce from 'jsforce';
import { startSim } from './sfsim_helper.mjs';

const CLIENT_ID = 'sfbridge-test-client';
const CLIENT_SECRET = 'sfbridge-test-secret';
const REDIRECT = 'http://localhost:8765/oauth/callback';
const VERSION = '60.0';

let sim;
let conn; // authorized through the web-server flow
let oauth2;

before(async () => {
  sim = await startSim(['--seed-accounts', '6000', '--seed-contacts', '3000',
    '--seed-opportunities', '500', '--seed-interactions', '300', '--seed-attendees', '400',
    '--bulk-delay-ms', '150']);
});

after(async () => {
  const code = await sim.stop();
  assert.equal(code, 0, 'sfsim exits 0 on SIGTERM');
});

async function authorizeCode(o2, state) {
  const url = o2.getAuthorizationUrl({ scope: 'api refresh_token', state });
  const res = await fetch(url, { redirect: 'manual' });
  assert.equal(res.status, 302);
  const loc = new URL(res.headers.get('location'));
  assert.equal(loc.origin + loc.pathname, REDIRECT);
  assert.equal(loc.searchParams.get('state'), state);
  const code = loc.searchParams.get('code');
  assert.ok(code && code.length > 20, 'authorization code in the redirect');
  return code;
}

test('OAuth2 authorize + requestToken (PKCE) + refresh', async () => {
  oauth2 = new jsforce.OAuth2({
    loginUrl: sim.url, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET,
    redirectUri: REDIRECT, useVerifier: true,
  });
  const code = await authorizeCode(oauth2, 'st-123');
  const tok = await oauth2.requestToken(code);
  for (const k of ['access_token', 'refresh_token', 'signature', 'scope', 'instance_url', 'id',
    'token_type', 'issued_at']) {
    assert.equal(typeof tok[k], 'string', `${k} is a string`);
  }
  assert.match(tok.access_token, /^00D[A-Za-z0-9]{12}!/);
  assert.match(tok.refresh_token, /^5Aep/);
  assert.match(tok.issued_at, /^\d{13}$/);
  assert.equal(tok.instance_url, sim.url);
  assert.equal(tok.token_type, 'Bearer');
  const sig = createHmac('sha256', CLIENT_SECRET).update(tok.id + tok.issued_at).digest('base64');
  assert.equal(tok.signature, sig);

  // a code is single-use
  await assert.rejects(oauth2.requestToken(code), (e) => e.name === 'invalid_grant');

  // Connection.authorize with a fresh code
  conn = new jsforce.Connection({ oauth2, version: VERSION });
  const code2 = await authorizeCode(oauth2, 'st-456');
  const info = await conn.authorize(code2);
  assert.match(info.id, /^005/);
  assert.match(info.organizationId, /^00D/);
  assert.equal(conn.instanceUrl, sim.url);

  const ident = await conn.identity();
  assert.equal(ident.user_id, info.id);
  assert.equal(ident.organization_id, info.organizationId);

  const ref = await oauth2.refreshToken(conn.refreshToken);
  assert.equal(typeof ref.access_token, 'string');
  assert.equal(ref.refresh_token, undefined, 'no rotation by default');
  assert.notEqual(ref.access_token, conn.accessToken);

  // a wrong verifier is refused
  const bad = new jsforce.OAuth2({
    loginUrl: sim.url, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET,
    redirectUri: REDIRECT, useVerifier: true,
  });
  const code3 = await authorizeCode(bad, 'st-789');
  bad.codeVerifier = 'not-the-verifier';
  await assert.rejects(bad.requestToken(code3), (e) => e.name === 'invalid_request');

  // expired sessions are refreshed transparently by jsforce
  const before = (await sim.control('GET', '/__sim/stats')).body.refresh_grants;
  await sim.control('POST', '/__sim/faults', { expire_sessions: true });
  const r = await conn.query('SELECT Id FROM Account LIMIT 1');
  assert.equal(r.records.length, 1);
  const afterStats = (await sim.control('GET', '/__sim/stats')).body.refresh_grants;
  assert.equal(afterStats, before + 1);
});

test('query with autoFetch over 6000 records and maxFetch', async () => {
  const all = await conn.query('SELECT Id, Name, Industry, SystemModstamp FROM Account ORDER BY Id')
    .autoFetch(true).maxFetch(100000).execute();
  assert.equal(all.totalSize, 6000);
  assert.equal(all.records.length, 6000);
  assert.equal(new Set(all.records.map((r) => r.Id)).size, 6000);
  const sorted = all.records.map((r) => r.Id);
  assert.deepEqual(sorted, [...sorted].sort());
  assert.match(all.records[0].SystemModstamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000\+0000$/);
  assert.equal(all.records[0].attributes.type, 'Account');

  const capped = await conn.query('SELECT Id FROM Account').autoFetch(true).maxFetch(5100).execute();
  assert.equal(capped.records.length, 5100);
  assert.equal(capped.totalSize, 6000);

  const rel = await conn.query("SELECT Id, Name, Account.Name, Account.Owner.Name FROM Contact LIMIT 3");
  assert.equal(rel.records.length, 3);
  assert.equal(rel.records[0].Account.attributes.type, 'Account');
  assert.equal(typeof rel.records[0].Account.Owner.Name, 'string');

  const cnt = await conn.query('SELECT COUNT() FROM Contact');
  assert.equal(cnt.totalSize, 3000);

  await assert.rejects(conn.query('SELECT Id, Nope__c FROM Account'),
    (e) => e.errorCode === 'INVALID_FIELD');
  await assert.rejects(conn.query('SELECT Id FROM Account WHERE'),
    (e) => e.errorCode === 'MALFORMED_QUERY');
});

test('sobject create/update/upsert/retrieve/destroy and queryAll sees the deleted record', async () => {
  const acc = conn.sobject('Account');
  const c = await acc.create({ Name: 'Conformance Co', Industry: 'Banking' });
  assert.equal(c.success, true);
  assert.match(c.id, /^001[A-Za-z0-9]{15}$/);

  const u = await acc.update({ Id: c.id, Name: 'Conformance Co 2' });
  assert.equal(u.success, true);
  const got = await acc.retrieve(c.id);
  assert.equal(got.Name, 'Conformance Co 2');
  assert.equal(got.Industry, 'Banking');
  assert.equal(got.IsDeleted, false);

  const up1 = await acc.upsert({ Name: 'Upserted', Platform_Id__c: 'conf-1' }, 'Platform_Id__c');
  assert.equal(up1.success, true);
  assert.equal(up1.created, true);
  const up2 = await acc.upsert({ Name: 'Upserted 2', Platform_Id__c: 'conf-1' }, 'Platform_Id__c');
  assert.equal(up2.success, true);
  assert.equal(up2.id, up1.id);
  assert.equal((await acc.retrieve(up1.id)).Name, 'Upserted 2');

  await assert.rejects(acc.create({ Industry: 'Retail' }),
    (e) => e.errorCode === 'REQUIRED_FIELD_MISSING');

  const d = await acc.destroy(c.id);
  assert.equal(d.success, true);
  const q = await conn.query(`SELECT Id FROM Account WHERE Id = '${c.id}'`);
  assert.equal(q.totalSize, 0);
  // jsforce 3 spells queryAll as scanAll
  const qa = await conn.query(`SELECT Id, IsDeleted FROM Account WHERE Id = '${c.id}'`,
    { scanAll: true });
  assert.equal(qa.totalSize, 1);
  assert.equal(qa.records[0].IsDeleted, true);
  const log = (await sim.control('GET', '/__sim/requests')).body;
  assert.ok(log.some((e) => e.path === `/services/data/v${VERSION}/queryAll` && e.status === 200));
});

test('collections create of 200 records', async () => {
  const recs = Array.from({ length: 200 }, (_, i) => ({
    LastName: `Batch${i}`, Email: `batch${i}@example.net`, Platform_Id__c: `batch-${i}`,
  }));
  const res = await conn.sobject('Contact').create(recs, { allOrNone: true });
  assert.equal(res.length, 200);
  assert.ok(res.every((r) => r.success && /^003/.test(r.id)));
  const log = (await sim.control('GET', '/__sim/requests')).body;
  const coll = log.filter((e) => e.path === `/services/data/v${VERSION}/composite/sobjects`);
  assert.equal(coll.length, 1, 'one collection call for 200 records');
  const cnt = await conn.query("SELECT COUNT() FROM Contact WHERE LastName LIKE 'Batch%'");
  assert.equal(cnt.totalSize, 200);
});

test('composite with a reference', async () => {
  const base = `/services/data/v${VERSION}`;
  const res = await conn.requestPost(`${base}/composite`, {
    allOrNone: true,
    compositeRequest: [
      { method: 'POST', url: `${base}/sobjects/Account`, referenceId: 'refAcc',
        body: { Name: 'Composite Parent' } },
      { method: 'POST', url: `${base}/sobjects/Contact`, referenceId: 'refCon',
        body: { LastName: 'Child', AccountId: '@{refAcc.id}' } },
      { method: 'GET', url: `${base}/sobjects/Account/@{refAcc.id}?fields=Name`, referenceId: 'getAcc' },
    ],
  });
  assert.equal(res.compositeResponse.length, 3);
  const [a, c, g] = res.compositeResponse;
  assert.equal(a.httpStatusCode, 201);
  assert.equal(c.httpStatusCode, 201);
  assert.equal(g.httpStatusCode, 200);
  assert.equal(g.body.Name, 'Composite Parent');
  const child = await conn.sobject('Contact').retrieve(c.body.id);
  assert.equal(child.AccountId, a.body.id);
});

test('describe and limits', async () => {
  const g = await conn.describeGlobal();
  assert.ok(g.sobjects.some((s) => s.name === 'Interaction' && s.keyPrefix === '0rI'));
  const d = await conn.sobject('Account').describe();
  assert.equal(d.name, 'Account');
  assert.equal(d.keyPrefix, '001');
  const byName = Object.fromEntries(d.fields.map((f) => [f.name, f]));
  assert.equal(byName.Id.type, 'id');
  assert.equal(byName.Platform_Id__c.externalId, true);
  assert.equal(byName.Open_Pipeline__c.calculated, true);
  assert.equal(byName.Open_Pipeline__c.createable, false);
  assert.equal(byName.Name.nillable, false);
  assert.ok(byName.Industry.picklistValues.length > 5);
  assert.deepEqual(byName.ParentId.referenceTo, ['Account']);
  assert.ok(d.childRelationships.some((r) => r.childSObject === 'Contact' && r.field === 'AccountId'));

  const lim = await conn.limits();
  assert.equal(lim.DailyApiRequests.Max, 100000);
  assert.ok(lim.DailyApiRequests.Remaining < 100000);
});

test('Bulk 2.0 query', async () => {
  conn.bulk2.pollInterval = 100;
  conn.bulk2.pollTimeout = 20000;
  const stream = await conn.bulk2.query(
    "SELECT Id, Name, Email, Account.Name FROM Contact WHERE LastName != 'Child'");
  const records = [];
  await new Promise((resolve, reject) => {
    stream.on('record', (r) => records.push(r));
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  assert.equal(records.length, 3200);
  assert.match(records[0].Id, /^003/);
  assert.ok('Account.Name' in records[0]);
  const seeded = records.find((r) => r.Email && r.Email.endsWith('@example.org'));
  assert.ok(seeded && seeded['Account.Name'].length > 0);
});

test('FSC Interaction.RelatedRecordId and InteractionAttendee', async () => {
  const d = await conn.sobject('InteractionAttendee').describe();
  assert.equal(d.keyPrefix, '0ia');
  const byName = Object.fromEntries(d.fields.map((f) => [f.name, f]));
  assert.deepEqual(byName.InteractionId.referenceTo, ['Interaction']);
  assert.equal(byName.InteractionId.nillable, false);
  assert.equal(byName.IsOrganizer.defaultValue, false);
  assert.equal(byName.Platform_Id__c.externalId, true);
  const di = await conn.sobject('Interaction').describe();
  const rel = di.fields.find((f) => f.name === 'RelatedRecordId');
  assert.deepEqual(rel.referenceTo, ['Opportunity']);
  assert.equal(rel.relationshipName, 'RelatedRecord');
  assert.ok(di.childRelationships.some((r) => r.childSObject === 'InteractionAttendee' &&
    r.relationshipName === 'InteractionAttendees'));

  const seeded = await conn.query(
    'SELECT Id, Interaction.AccountId, Contact.AccountId, Contact.Email, EmailAddress ' +
    "FROM InteractionAttendee WHERE AttendeeType = 'External'");
  // interaction i is on account i, which has one contact (contact i): round 0
  // of the 400 attendees is that contact, round 1 an internal organizer
  assert.equal(seeded.totalSize, 300);
  for (const a of seeded.records) {
    assert.equal(a.Contact.AccountId, a.Interaction.AccountId);
    assert.equal(a.Contact.Email, a.EmailAddress);
  }
  const internal = await conn.query(
    "SELECT Id, User.Name, EmailAddress FROM InteractionAttendee WHERE AttendeeType = 'Internal' " +
    'AND IsOrganizer = true AND ContactId = null');
  assert.equal(internal.totalSize, 100);
  assert.ok(internal.records.every((r) => r.User.Name.length > 0));
  const related = await conn.query(
    'SELECT Id, AccountId, RelatedRecord.AccountId FROM Interaction WHERE RelatedRecordId != null');
  assert.ok(related.totalSize > 100 && related.totalSize < 200, `about half: ${related.totalSize}`);
  assert.ok(related.records.every((r) => r.RelatedRecord.AccountId === r.AccountId));

  const opp = (await conn.query('SELECT Id, AccountId FROM Opportunity LIMIT 1')).records[0];
  const con = (await conn.query(
    `SELECT Id FROM Contact WHERE AccountId = '${opp.AccountId}' LIMIT 1`)).records[0];
  const meet = await conn.sobject('Interaction').create({
    Name: 'jsforce meeting', AccountId: opp.AccountId, RelatedRecordId: opp.Id,
    InteractionType: 'Phone Call',
  });
  assert.equal(meet.success, true);
  const att = await conn.sobject('InteractionAttendee').create({
    InteractionId: meet.id, ContactId: con.Id, AttendeeType: 'External',
  });
  assert.match(att.id, /^0ia/);
  const up = await conn.sobject('InteractionAttendee').upsert(
    { Platform_Id__c: 'js-att-1', InteractionId: meet.id, AttendeeType: 'Internal' },
    'Platform_Id__c');
  assert.equal(up.created, true);
  await assert.rejects(
    conn.sobject('InteractionAttendee').create({ InteractionId: meet.id, ContactId: '003Hs00000zzzzz' }),
    (e) => e.errorCode === 'INVALID_CROSS_REFERENCE_KEY');
  const q = await conn.query(
    'SELECT Id, IsOrganizer, Interaction.Name, Interaction.RelatedRecordId, Contact.Email ' +
    `FROM InteractionAttendee WHERE InteractionId = '${meet.id}' ORDER BY Id`);
  assert.equal(q.totalSize, 2);
  assert.equal(q.records[0].Interaction.Name, 'jsforce meeting');
  assert.equal(q.records[0].Interaction.RelatedRecordId, opp.Id);
  assert.equal(q.records[0].IsOrganizer, false);
  assert.equal(typeof q.records[0].Contact.Email, 'string');
  assert.equal(q.records[1].Contact, null);

  const stream = await conn.bulk2.query('SELECT Id, Interaction.Name FROM InteractionAttendee');
  const rows = [];
  await new Promise((resolve, reject) => {
    stream.on('record', (r) => rows.push(r));
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  assert.equal(rows.length, 402);
  assert.ok(rows.every((r) => r['Interaction.Name'].length > 0));
});
