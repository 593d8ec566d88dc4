// End to end, as a person does it: open amoauth's page, press the site button, allow access in
// the sandbox's popup, land on the success page; then seed 003's SQL query finds the account and
// the internal API hands out its token and proxies amoCRM's API.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, startAmoauth } from './harness.mjs';

let amoauth, dir, browser, ready;

before(async () => {
  amoauth = await startAmoauth({ name: 'connect' });
  ({ dir, browser, ready } = amoauth);
});

after(() => amoauth?.stop());

test('site button → consent popup → Allow → success page → stored, usable account', async () => {
  const page = await browser.newPage();
  await page.goto(`${ready.url}/`);
  const button = page.locator('#connect button');
  await button.waitFor({ timeout: 15000 });

  const [popup] = await Promise.all([page.waitForEvent('popup'), button.click()]);
  await popup.waitForLoadState();
  assert.match(popup.url(), /\/oauth\?/);
  await popup.locator('#allow').click();

  // popup mode: the popup closes and the main window lands on the callback's success page.
  await page.waitForURL(/amo-crm\/callback\?/, { timeout: 15000 });
  const heading = await page.locator('#result').textContent();
  assert.match(heading, /is connected/);
  assert.equal(await page.locator('#account-id').textContent(), '30000001');

  // Seed 003's query, verbatim.
  const rows = execFileSync('sqlite3', [join(dir, 'amoauth.db'),
    'SELECT "accountId", "expiresAt", "createdAt" FROM amo_tokens;']).toString().trim();
  assert.match(rows, /^30000001\|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\|\d{4}-\d\d-\d\dT/);

  const apiKey = readFileSync(join(dir, 'api.key'), 'utf8').trim();
  const auth = { Authorization: `Bearer ${apiKey}` };
  const token = await fetch(`${ready.url}/v1/accounts/30000001/token`, { headers: auth });
  assert.equal(token.status, 200);
  const body = await token.json();
  assert.equal(body.token_type, 'Bearer');
  assert.equal(body.account_id, 30000001);
  assert.equal(body.base_domain, 'example.amocrm.ru');
  assert.equal(body.access_token.split('.').length, 3);

  const account = await fetch(`${ready.url}/v1/accounts/30000001/proxy/api/v4/account`, { headers: auth });
  assert.equal(account.status, 200);
  const info = await account.json();
  assert.equal(info.id, 30000001);
  assert.equal(info.subdomain, 'example');

  // Reloading the callback must not send the code again: the state is spent.
  const reload = await page.reload();
  assert.equal(reload.status(), 400);
  assert.match(await page.locator('#result').textContent(), /expired or was already used/);
  const journal = await (await fetch(`${ready.sandbox_url}/sandbox/journal`)).json();
  assert.equal(journal.counters.codes_exchanged, 1);
  assert.equal(journal.counters.code_reuses, 0);
});

test('command line: exchange-code (a code pasted from the integration window), accounts, token', async () => {
  const cliWithInput = (input, ...args) => execFileSync(
    BIN, [...args, '--sandbox', '--database-url', `sqlite://${dir}/amoauth.db`],
    { cwd: dir, env: { PATH: process.env.PATH }, input, stdio: ['pipe', 'pipe', 'pipe'] }).toString();
  const cli = (...args) => cliWithInput('', ...args);
  // The code a person copies from the integration's "Keys" tab: here the sandbox issues one.
  const integration = readFileSync(join(dir, 'sandbox.env'), 'utf8').match(/AMO_CLIENT_ID=(.*)/)[1];
  const form = new URLSearchParams({ client_id: integration, state: '', mode: 'post_message',
                                     account_id: '31000001', decision: 'allow' });
  const decided = await fetch(`${ready.sandbox_url}/oauth/decision`, {
    method: 'POST', body: form, redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
  assert.equal(decided.status, 302);
  const location = new URL(decided.headers.get('location'));
  const code = location.searchParams.get('code');
  const referer = location.searchParams.get('referer');
  assert.equal(referer, 'example.kommo.com');

  // The code comes on standard input, out of `ps` and the shell history.
  const out = cliWithInput(`${code}\n`, 'exchange-code', '--code-file', '-', '--referer', referer);
  assert.match(out, /Connected account 31000001 \(example\.kommo\.com\)/);
  assert.doesNotMatch(out, new RegExp(code.slice(0, 20)));

  // The same code twice is refused without asking amoCRM again; --code still works, with a
  // warning that the command line is visible.
  assert.throws(() => cli('exchange-code', '--code', code, '--referer', referer),
                (e) => /already been exchanged|already used/i.test(e.stderr.toString()) &&
                       /warning: --code puts the code where `ps`/.test(e.stderr.toString()));
  // No code at all is refused before anything goes out.
  assert.throws(() => cliWithInput('', 'exchange-code', '--code-file', '-', '--referer', referer),
                (e) => e.status === 2 && /no code/.test(e.stderr.toString()));

  const table = cli('accounts');
  assert.match(table, /31000001\s+example\.kommo\.com\s+oauth\s+active/);
  const token = cli('token', '31000001').trim();
  assert.equal(token.split('.').length, 3);

  // A referer outside the allow-list never gets the secret.
  assert.throws(() => cli('exchange-code', '--code', 'def50200abc', '--referer', 'evil.example'), /referer|allowed/i);
});

test('command line: `amoauth sandbox` starts with the knobs its flags set, and refuses bad ones', async () => {
  const sandboxDir = join(dir, 'standalone');
  const readyFile = join(sandboxDir, 'ready.json');
  const flags = ['sandbox', '--http-listen', '127.0.0.1:0', '--tls-listen', '127.0.0.1:0',
                 '--state-dir', join(sandboxDir, 'state'), '--ready-file', readyFile,
                 '--code-ttl', '30', '--access-token-ttl', '60', '--refresh-token-ttl', '600',
                 '--rotation', 'grace_until_new_used', '--keep-access-on-refresh',
                 '--api-rate-limit', '3', '--api-block-after', '2', '--api-violation-window', '5',
                 '--api-block-seconds', '30', '--api-retry-after', '2'];
  const sandbox = spawn(BIN, flags, { cwd: dir, env: { PATH: process.env.PATH },
                                      stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  sandbox.stderr.on('data', (d) => { output += d; });
  try {
    const deadline = Date.now() + 30000;
    while (!existsSync(readyFile)) {
      if (sandbox.exitCode !== null) throw new Error(`amoauth sandbox exited early:\n${output}`);
      if (Date.now() > deadline) throw new Error(`amoauth sandbox did not start:\n${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const { url } = JSON.parse(readFileSync(readyFile, 'utf8'));
    const config = await (await fetch(`${url}/sandbox/config`)).json();
    assert.deepEqual(config, {
      code_ttl_seconds: 30, access_token_ttl_seconds: 60, refresh_token_ttl_seconds: 600,
      rotation: 'grace_until_new_used', revoke_access_token_on_refresh: false,
      api_rate_limit_rps: 3, api_block_after_violations: 2, api_violation_window_seconds: 5,
      api_block_seconds: 30, api_retry_after_seconds: 2,
      token_delay_ms: 0, exchange_hook_delay_ms: 0, secrets_delivery: 'before_redirect',
      secrets_delay_ms: 0,
    });
  } finally {
    if (sandbox.exitCode === null) {
      sandbox.kill('SIGTERM');
      await new Promise((r) => sandbox.once('exit', r));
    }
  }

  // A value out of the simulator's range stops it before it listens: exit code 2, naming the flag.
  assert.throws(() => execFileSync(BIN, ['sandbox', '--http-listen', '127.0.0.1:0', '--tls-listen', '127.0.0.1:0',
                                         '--state-dir', join(sandboxDir, 'state'), '--access-token-ttl', '0'],
                                   { cwd: dir, env: { PATH: process.env.PATH }, stdio: 'pipe' }),
                (e) => e.status === 2 && /--access-token-ttl must be/.test(e.stderr.toString()));
});
