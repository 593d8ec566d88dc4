// docs/openapi.json against real answers: amoauth serving with its sandbox, every documented
// operation exercised for its success and its main errors, each answer's status, Content-Type,
// body and headers checked against the document (openapi_contract.mjs, ajv). An operation nobody
// exercised fails the last test. (tests/integration/openapi_test.cpp checks the reverse: every
// route the router knows is in the document.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { startAmoauth, connectWithoutBrowser, sandboxIntegration } from './harness.mjs';
import { Contract, openApiErrors } from './openapi_contract.mjs';

const OAUTH = 30000001;      // connected through the callback
const LONG_LIVED = 31000001; // connected with a long-lived token (Kommo)
const UNKNOWN = 39999999;
const CALLBACK = '/api/v1/integrations/amo-crm/callback';
const DISCONNECT = '/api/v1/integrations/amo-crm/disconnect';
const SECRETS = '/api/v1/integrations/amo-crm/secrets';

let amoauth, base, sandbox, contract;

before(async () => {
  amoauth = await startAmoauth({ name: 'openapi', browser: false });
  base = amoauth.ready.url;
  sandbox = amoauth.ready.sandbox_url;
  contract = new Contract(await (await fetch(`${base}/openapi.json`)).json());
});

after(() => amoauth?.stop());

/// A request to amoauth: `key` false sends no API key; a `body` object is sent as JSON.
function call(method, target, { body, key = true, headers = {} } = {}) {
  const h = { ...(key ? amoauth.auth : {}), ...headers };
  let payload;
  if (body !== undefined) {
    payload = typeof body === 'string' ? body : JSON.stringify(body);
    h['Content-Type'] ??= 'application/json';
  }
  return fetch(base + target, { method, headers: h, body: payload, redirect: 'manual' });
}

/// Calls amoauth and checks the answer against the document's `path` (a template).
async function expect(status, method, path, target, options) {
  const answer = await contract.check(method.toLowerCase(), path, await call(method, target, options));
  assert.equal(answer.status, status, `${method} ${target}: ${answer.text}`);
  return answer;
}

async function sandboxPost(path, body) {
  const r = await fetch(sandbox + path, { method: 'POST', body: JSON.stringify(body) });
  assert.ok(r.ok, `${path}: ${r.status} ${await r.clone().text()}`);
  return r.json();
}

test('GET /openapi.json serves the document (public, ETag): valid OpenAPI 3.1, its schemas compile', async () => {
  const served = await call('GET', '/openapi.json', { key: false });
  const text = await served.clone().text();
  assert.ok(text === readFileSync(new URL('../../docs/openapi.json', import.meta.url), 'utf8'),
            'the binary serves docs/openapi.json as it is in the tree (rebuild?)');
  assert.deepEqual(openApiErrors(JSON.parse(text)), [], 'docs/openapi.json is valid OpenAPI 3.1');
  contract.compileAll();
  await contract.check('get', '/openapi.json', served);
  const etag = served.headers.get('etag');
  assert.ok(etag);
  assert.match(served.headers.get('cache-control'), /public/);
  await expect(304, 'GET', '/openapi.json', '/openapi.json', { key: false, headers: { 'If-None-Match': etag } });
});

test('public pages and probes', async () => {
  await expect(200, 'GET', '/healthz', '/healthz', { key: false });
  await expect(200, 'GET', '/', '/', { key: false });
  await expect(200, 'GET', '/connect', '/connect?mode=post_message', { key: false });
  await expect(400, 'GET', '/connect', '/connect?mode=sideways', { key: false });
  await expect(200, 'GET', CALLBACK, CALLBACK, { key: false });  // the availability probe
  await expect(400, 'GET', CALLBACK, `${CALLBACK}?code=x&state=never-issued&referer=example.amocrm.ru`, { key: false });
  await expect(401, 'GET', '/metrics', '/metrics', { key: false });
  await expect(200, 'GET', '/metrics', '/metrics');
});

test('connect: /v1/connect, /v1/button, the callback (allow and deny)', async () => {
  const started = await expect(201, 'POST', '/v1/connect', '/v1/connect', { body: {} });
  assert.match(started.json.authorize_url, /^http/);
  await expect(201, 'POST', '/v1/connect', '/v1/connect');  // no body: popup
  await expect(400, 'POST', '/v1/connect', '/v1/connect', { body: { mode: 'sideways' } });
  await expect(400, 'POST', '/v1/connect', '/v1/connect', { body: '[1]' });
  await expect(401, 'POST', '/v1/connect', '/v1/connect', { key: false, body: {} });
  await expect(401, 'POST', '/v1/connect', '/v1/connect', { key: false, headers: { Authorization: 'Bearer wrong' } });

  const button = await expect(200, 'GET', '/v1/button', '/v1/button?title=Connect&color=green&mode=post_message');
  assert.equal(button.json.variant, 'existing');
  const refused = await expect(400, 'GET', '/v1/button', '/v1/button?logo=https://x.example/l.png');
  assert.equal(refused.json.field, 'logo');
  await expect(401, 'GET', '/v1/button', '/v1/button', { key: false });

  const denied = await contract.check('get', CALLBACK, await connectWithoutBrowser(amoauth, OAUTH, 'deny'));
  assert.equal(denied.status, 403);
  const connected = await contract.check('get', CALLBACK, await connectWithoutBrowser(amoauth, OAUTH));
  assert.equal(connected.status, 200, connected.text);
  assert.match(connected.headers.get('content-type'), /text\/html/);
});

test('accounts, tokens and refresh', async () => {
  const list = await expect(200, 'GET', '/v1/accounts', '/v1/accounts');
  assert.ok(list.json.accounts.some((a) => a.account_id === OAUTH));
  await expect(401, 'GET', '/v1/accounts', '/v1/accounts', { key: false });

  const P = '/v1/accounts/{id}';
  const account = await expect(200, 'GET', P, `/v1/accounts/${OAUTH}`);
  assert.equal(account.json.status, 'active');
  assert.equal(account.json.api_blocked_for_seconds, null);
  const { clientId } = sandboxIntegration(amoauth);
  await expect(200, 'GET', P, `/v1/accounts/${OAUTH}?client_id=${clientId}`);
  await expect(404, 'GET', P, `/v1/accounts/${OAUTH}`, { headers: { 'X-Amoauth-Client-Id': 'not-an-integration' } });
  await expect(404, 'GET', P, `/v1/accounts/${UNKNOWN}`);
  await expect(400, 'GET', P, '/v1/accounts/abc');
  await expect(401, 'GET', P, `/v1/accounts/${OAUTH}`, { key: false });

  const T = '/v1/accounts/{id}/token';
  const token = await expect(200, 'GET', T, `/v1/accounts/${OAUTH}/token`);
  assert.equal(token.headers.get('cache-control'), 'no-store');
  assert.ok(token.json.expires_in > 0);
  await expect(404, 'GET', T, `/v1/accounts/${UNKNOWN}/token`);
  await expect(400, 'GET', T, '/v1/accounts/0/token');
  await expect(401, 'GET', T, `/v1/accounts/${OAUTH}/token`, { key: false });

  const R = '/v1/accounts/{id}/refresh';
  const refreshed = await expect(200, 'POST', R, `/v1/accounts/${OAUTH}/refresh`);
  assert.equal(refreshed.json.refresh.failures, 0);
  await sandboxPost('/sandbox/faults', { token_endpoint: { status: 503, times: 1 } });
  const failed = await expect(502, 'POST', R, `/v1/accounts/${OAUTH}/refresh`);
  assert.equal(failed.json.error, 'amo_server_error');
  const after = await expect(200, 'GET', P, `/v1/accounts/${OAUTH}`);
  assert.equal(after.json.refresh.failures, 1);
  assert.equal(typeof after.json.refresh.last_error, 'string');
  await expect(200, 'POST', R, `/v1/accounts/${OAUTH}/refresh`);
  await expect(404, 'POST', R, `/v1/accounts/${UNKNOWN}/refresh`);
  await expect(400, 'POST', R, '/v1/accounts/-1/refresh');
  await expect(401, 'POST', R, `/v1/accounts/${OAUTH}/refresh`, { key: false });
});

test('the proxy, every documented method', async () => {
  const X = '/v1/accounts/{id}/proxy/{path}';
  const account = await expect(200, 'GET', X, `/v1/accounts/${OAUTH}/proxy/api/v4/account`);
  assert.equal(account.json.id, OAUTH);
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
    const echo = await expect(200, method, X, `/v1/accounts/${OAUTH}/proxy/api/v4/leads?with=contacts`,
                              { body: [{ name: 'Deal' }] });
    assert.equal(echo.json.method, method, echo.text);
  }
  await expect(401, 'GET', X, `/v1/accounts/${OAUTH}/proxy/api/v4/account`, { key: false });
  await expect(404, 'GET', X, `/v1/accounts/${UNKNOWN}/proxy/api/v4/account`);
  await expect(400, 'GET', X, '/v1/accounts/abc/proxy/api/v4/account');
});

test('long-lived tokens', async () => {
  const { clientId } = sandboxIntegration(amoauth);
  const L = '/v1/long-lived-tokens';
  const issued = await sandboxPost(`/sandbox/integrations/${clientId}/long-lived-tokens`, { account_id: LONG_LIVED, days: 30 });
  const added = await expect(201, 'POST', L, L, { body: { token: issued.access_token, domain: 'example.kommo.com' } });
  assert.equal(added.json.kind, 'long_lived');
  assert.ok(!added.text.includes(issued.access_token), 'the answer never repeats the token');
  await expect(400, 'POST', L, L, { body: { token: 'not-a-jwt', domain: 'example.kommo.com' } });
  await expect(400, 'POST', L, L, { body: { domain: 'example.kommo.com' } });
  const oauth = await sandboxPost(`/sandbox/integrations/${clientId}/long-lived-tokens`, { account_id: OAUTH, days: 30 });
  const replaces = await expect(409, 'POST', L, L, { body: { token: oauth.access_token, domain: 'example.amocrm.ru' } });
  assert.equal(replaces.json.error, 'long_lived_token_replaces_oauth');
  const other = await sandboxPost('/sandbox/integrations', { redirect_uri: 'https://elsewhere.example/cb', name: 'Other' });
  const foreign = await sandboxPost(`/sandbox/integrations/${other.client_id}/long-lived-tokens`, { account_id: LONG_LIVED, days: 30 });
  await expect(404, 'POST', L, L, { body: { token: foreign.access_token, domain: 'example.kommo.com' } });
  await expect(401, 'POST', L, L, { key: false, body: { token: issued.access_token } });

  const notRefreshable = await expect(409, 'POST', '/v1/accounts/{id}/refresh', `/v1/accounts/${LONG_LIVED}/refresh`);
  assert.equal(notRefreshable.json.error, 'long_lived_token_not_refreshable');
  await expect(200, 'GET', '/v1/accounts/{id}/token', `/v1/accounts/${LONG_LIVED}/token`);
});

test('legacy API keys: exchange-api-key and legacy-login', async () => {
  const accounts = await (await fetch(`${sandbox}/sandbox/accounts`)).json();
  const user = accounts.find((a) => a.id === OAUTH).users[0];
  const credentials = { login: user.login, api_key: user.api_key, domain: 'example.amocrm.ru' };
  const E = '/v1/exchange-api-key';
  const requested = await expect(202, 'POST', E, E, { body: credentials });
  assert.equal(requested.json.status, 'requested');
  const tooSoon = await expect(429, 'POST', E, E, { body: credentials });
  assert.ok(Number(tooSoon.headers.get('retry-after')) >= 1);
  await expect(400, 'POST', E, E, { body: { ...credentials, login: '' } });
  const refused = await expect(400, 'POST', E, E, { body: { ...credentials, domain: 'evil.example.com' } });
  assert.equal(refused.json.error, 'referer_not_allowed');
  await expect(401, 'POST', E, E, { key: false, body: credentials });

  const G = '/v1/legacy-login';
  const login = await expect(200, 'POST', G, G, { body: credentials });
  assert.equal(login.json.exchange, 'throttled');
  assert.equal(login.json.oauth.account_id, OAUTH);
  await expect(400, 'POST', G, G, { body: 'not json' });
  await expect(401, 'POST', G, G, { key: false, body: credentials });
});

test('hooks amoCRM calls: codes without a person, the secrets webhook', async () => {
  const accepted = await expect(200, 'GET', CALLBACK,
    `${CALLBACK}?code=def502-not-a-real-code&referer=example.amocrm.ru&platform=1&from_widget=1`, { key: false });
  assert.equal(accepted.json.source, 'widget');
  await expect(400, 'GET', CALLBACK, `${CALLBACK}?code=def502&from_widget=1`, { key: false });
  const notAllowed = await expect(400, 'GET', CALLBACK, `${CALLBACK}?code=def502&referer=evil.example.com&from_exchange=1`, { key: false });
  assert.equal(notAllowed.json.error, 'referer_not_allowed');

  await expect(400, 'POST', SECRETS, SECRETS, { key: false, body: { client_id: 'x' } });
  const unknownState = await expect(400, 'POST', SECRETS, SECRETS,
    { key: false, body: { client_id: 'abc-123', client_secret: 's'.repeat(64), state: 'never-issued' } });
  assert.equal(unknownState.json.error, 'state_invalid');
  const button = await expect(200, 'GET', '/v1/button', '/v1/button?variant=metadata&name=Shop&description=Sells');
  const keys = { client_id: '6f0a7d1e-0000-4000-8000-000000000001', client_secret: 's'.repeat(64), state: button.json.state };
  await expect(200, 'POST', SECRETS, SECRETS, { key: false, body: keys });
  const replay = await expect(409, 'POST', SECRETS, SECRETS, { key: false, body: keys });
  assert.equal(replay.json.error, 'secrets_already_received');
});

test('the proxy under amoCRM\'s block: 403 handed back, then 503 amo_blocked with Retry-After', async () => {
  const X = '/v1/accounts/{id}/proxy/{path}';
  await sandboxPost('/sandbox/config', { api_rate_limit_rps: 1, api_block_after_violations: 1 });
  let blocked;
  for (let i = 0; i < 10 && !blocked; ++i) {
    const answer = await contract.check('get', X, await call('GET', `/v1/accounts/${LONG_LIVED}/proxy/api/v4/account`));
    if (answer.status === 503) blocked = answer;
  }
  assert.ok(blocked, 'amoauth stopped sending after the block');
  assert.equal(blocked.json.error, 'amo_blocked');
  assert.ok(Number(blocked.headers.get('retry-after')) >= 1);
  const account = await expect(200, 'GET', '/v1/accounts/{id}', `/v1/accounts/${LONG_LIVED}`);
  assert.ok(account.json.api_blocked_for_seconds > 0);
});

test('the disconnect hook, then the account\'s 409s', async () => {
  const { clientId, clientSecret } = sandboxIntegration(amoauth);
  const signature = createHmac('sha256', clientSecret).update(`${clientId}|${OAUTH}`).digest('hex');
  await expect(400, 'GET', DISCONNECT, `${DISCONNECT}?client_uuid=${clientId}&account_id=${OAUTH}`, { key: false });
  const forged = await expect(403, 'GET', DISCONNECT,
    `${DISCONNECT}?client_uuid=${clientId}&account_id=${OAUTH}&signature=${'0'.repeat(64)}`, { key: false });
  assert.equal(forged.json.error, 'signature_invalid');
  // amoCRM revokes the tokens, then sends the hook; amoauth confirms before it erases anything.
  await sandboxPost(`/sandbox/accounts/${OAUTH}/revoke`, { tokens: 'all' });
  await expect(200, 'GET', DISCONNECT, `${DISCONNECT}?client_uuid=${clientId}&account_id=${OAUTH}&signature=${signature}`, { key: false });

  const gone = await expect(409, 'GET', '/v1/accounts/{id}/token', `/v1/accounts/${OAUTH}/token`);
  assert.equal(gone.json.error, 'account_disconnected');
  await expect(409, 'POST', '/v1/accounts/{id}/refresh', `/v1/accounts/${OAUTH}/refresh`);
  await expect(409, 'GET', '/v1/accounts/{id}/proxy/{path}', `/v1/accounts/${OAUTH}/proxy/api/v4/account`);
});

test('every documented operation was exercised', (t) => {
  assert.deepEqual(contract.unexercisedOperations(), [], 'operations no test called');
  const untried = contract.documentedStatuses().filter((s) => ![...contract.exercised].includes(s));
  t.diagnostic(`${contract.exercised.size} of ${contract.documentedStatuses().length} documented (operation, status) pairs seen; ` +
               `not provoked here (amoCRM or database failures): ${untried.length}`);
});
