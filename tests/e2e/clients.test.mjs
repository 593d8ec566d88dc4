// docs/clients.md's examples, run as they are: each snippet under docs/clients/ (quoted verbatim in
// the doc, which this test checks) against amoauth + its sandbox — a token and a proxied call, the
// JSON errors (404 not_found), amoauth's 503 with Retry-After (waited out and retried), and an
// account that must be connected again — and amocrm-js pointed at amoauth's proxy.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startAmoauth, connectWithoutBrowser, sandboxIntegration } from './harness.mjs';

const CLIENTS = fileURLToPath(new URL('../../docs/clients/', import.meta.url));
const DOC = fileURLToPath(new URL('../../docs/clients.md', import.meta.url));
const OAUTH = 30000001;
const LONG_LIVED = 31000001;
const COOLOFF = 5;  // AMOAUTH_BLOCK_COOLOFF: the Retry-After the snippets wait out
const SNIPPETS = [
  { name: 'curl', file: 'curl.sh', command: ['sh'] },
  { name: 'Node', file: 'node.mjs', command: [process.execPath] },
  { name: 'Python', file: 'python.py', command: ['python3'] },
  { name: 'PHP', file: 'php.php', command: ['php'] },
];

let amoauth, sandbox, apiKey, accessToken;

before(async () => {
  amoauth = await startAmoauth({ name: 'clients', browser: false, env: { AMOAUTH_BLOCK_COOLOFF: String(COOLOFF) } });
  sandbox = amoauth.ready.sandbox_url;
  apiKey = amoauth.auth.Authorization.replace('Bearer ', '');
  assert.equal((await connectWithoutBrowser(amoauth, OAUTH)).status, 200);
  const { clientId } = sandboxIntegration(amoauth);
  const issued = await sandboxPost(`/sandbox/integrations/${clientId}/long-lived-tokens`, { account_id: LONG_LIVED, days: 30 });
  const added = await fetch(`${amoauth.ready.url}/v1/long-lived-tokens`, {
    method: 'POST', headers: amoauth.auth, body: JSON.stringify({ token: issued.access_token, domain: 'example.kommo.com' }) });
  assert.equal(added.status, 201);
  accessToken = (await (await fetch(`${amoauth.ready.url}/v1/accounts/${OAUTH}/token`, { headers: amoauth.auth })).json()).access_token;
});

after(() => amoauth?.stop());

async function sandboxPost(path, body) {
  const r = await fetch(sandbox + path, { method: 'POST', body: JSON.stringify(body) });
  assert.ok(r.ok, `${path}: ${r.status} ${await r.clone().text()}`);
  return r.json();
}

/// Runs a snippet with amoauth's URL and key in its environment; resolves to { code, stdout, stderr }.
function run(command, file, env = {}) {
  return new Promise((resolve) => {
    const [program, ...args] = command;
    execFile(program, [...args, file], {
      timeout: 60000,
      env: { PATH: process.env.PATH, AMOAUTH_URL: amoauth.ready.url, AMOAUTH_API_KEY: apiKey, ...env },
    }, (error, stdout, stderr) => resolve({ code: error ? (error.code ?? 1) : 0, stdout, stderr }));
  });
}

async function metric(series) {
  const text = await (await fetch(`${amoauth.ready.url}/metrics`, { headers: amoauth.auth })).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

/// Gets account LONG_LIVED blocked by the sandbox (403) through amoauth's proxy: amoauth then
/// answers 503 amo_blocked with Retry-After for COOLOFF seconds, and the sandbox's own block
/// (2 s) is over by the time a client has waited that out. (amoauth holds the account back for
/// amoCRM's Retry-After, 1 s, after the 429 that starts the block: the block must outlast that.)
async function blockLongLivedAccount() {
  await sandboxPost('/sandbox/config', { api_rate_limit_rps: 1, api_block_after_violations: 1, api_block_seconds: 2 });
  try {
    for (let i = 0; i < 20; ++i) {
      const r = await fetch(`${amoauth.ready.url}/v1/accounts/${LONG_LIVED}/proxy/api/v4/account`, { headers: amoauth.auth });
      await r.arrayBuffer();
      if (r.status === 403) return;
    }
    assert.fail('the sandbox never blocked the account');
  } finally {
    await sandboxPost('/sandbox/config', { api_rate_limit_rps: 7, api_block_after_violations: 10 });
  }
}

test('docs/clients.md quotes every snippet verbatim', () => {
  const doc = readFileSync(DOC, 'utf8');
  for (const file of [...SNIPPETS.map((s) => s.file), 'amocrm-js.mjs']) {
    const marker = `<!-- snippet: clients/${file} -->`;
    const at = doc.indexOf(marker);
    assert.ok(at >= 0, `clients.md has no ${marker}`);
    const block = doc.slice(at + marker.length).match(/^\s*```[a-z]*\n([\s\S]*?)```/);
    assert.ok(block, `a code block follows ${marker}`);
    assert.equal(block[1], readFileSync(join(CLIENTS, file), 'utf8'), `clients.md's copy of ${file} is not the file`);
  }
});

for (const snippet of SNIPPETS) {
  test(`${snippet.name}: /token and the proxy; not_found; 503 waited out; must connect again`, async () => {
    const file = join(CLIENTS, snippet.file);
    const ok = await run(snippet.command, file, { AMO_ACCOUNT_ID: String(OAUTH) });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^token for example\.amocrm\.ru: expires in \d+ s$/m);
    assert.match(ok.stdout, /^account: Example \(30000001\)$/m);
    assert.ok(!ok.stdout.includes(accessToken) && !ok.stderr.includes(accessToken), 'the token is never printed');

    const missing = await run(snippet.command, file, { AMO_ACCOUNT_ID: '39999999' });
    assert.equal(missing.code, 1, missing.stdout);
    assert.match(missing.stderr, /404 not_found/);

    const wrongKey = await run(snippet.command, file, { AMO_ACCOUNT_ID: String(OAUTH), AMOAUTH_API_KEY: 'wrong' });
    assert.equal(wrongKey.code, 1);
    assert.match(wrongKey.stderr, /401 unauthorized/);

    await blockLongLivedAccount();
    const blockedBefore = await metric('amoauth_proxy_failures_total{reason="blocked"}');
    const waited = await run(snippet.command, file, { AMO_ACCOUNT_ID: String(LONG_LIVED) });
    assert.equal(waited.code, 0, waited.stderr);
    assert.match(waited.stdout, /^account: Example Kommo \(31000001\)$/m);
    assert.equal(await metric('amoauth_proxy_failures_total{reason="blocked"}'), blockedBefore + 1,
                 'the first proxied call got 503 amo_blocked, the retry after Retry-After succeeded');
  });
}

test('amocrm-js through amoauth\'s proxy: no OAuth in the SDK, real calls reach the sandbox', async () => {
  // The snippet imports amocrm-js: run a copy beside tests/e2e's node_modules.
  const dir = mkdtempSync(join(tmpdir(), 'amoauth-e2e-amocrm-js-'));
  try {
    symlinkSync(fileURLToPath(new URL('./node_modules', import.meta.url)), join(dir, 'node_modules'));
    copyFileSync(join(CLIENTS, 'amocrm-js.mjs'), join(dir, 'amocrm-js.mjs'));
    await fetch(`${sandbox}/sandbox/journal/reset`, { method: 'POST' });
    const sdk = await run([process.execPath], join(dir, 'amocrm-js.mjs'),
                          { AMO_DOMAIN: 'example.amocrm.ru', AMO_ACCOUNT_ID: String(OAUTH) });
    assert.equal(sdk.code, 0, sdk.stderr);
    assert.match(sdk.stdout, /^account: Example \(30000001\)$/m);
    assert.match(sdk.stdout, /^leads: page 1, \d+ on it$/m);

    const journal = await (await fetch(`${sandbox}/sandbox/journal`)).json();
    const seen = journal.requests.map((r) => `${r.method} ${r.host}${r.path} ${r.status}`);
    assert.ok(seen.includes('GET example.amocrm.ru/api/v4/account 200'), seen.join('\n'));
    assert.ok(seen.some((r) => /^GET example\.amocrm\.ru\/api\/v4\/leads 20[04]$/.test(r)), seen.join('\n'));
    assert.equal(journal.counters.token_requests, 0, 'the SDK asked amoCRM for no token');

    // The SDK's calls without the API key are refused by amoauth, not sent on.
    const refused = await run([process.execPath], join(dir, 'amocrm-js.mjs'),
                              { AMO_DOMAIN: 'example.amocrm.ru', AMO_ACCOUNT_ID: String(OAUTH), AMOAUTH_API_KEY: 'wrong' });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /401 unauthorized/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('each snippet tells an account that must be connected again (exit 2)', async () => {
  const { clientId } = sandboxIntegration(amoauth);
  const disconnected = await sandboxPost(`/sandbox/accounts/${OAUTH}/disconnect`, { client_id: clientId });
  assert.equal(disconnected.hook_status, 200);
  for (const snippet of SNIPPETS) {
    const again = await run(snippet.command, join(CLIENTS, snippet.file), { AMO_ACCOUNT_ID: String(OAUTH) });
    assert.equal(again.code, 2, `${snippet.name}: ${again.stdout}${again.stderr}`);
    assert.match(again.stderr, /409 account_disconnected/);
    assert.match(again.stderr, /must be connected again/);
  }
});
