// Kommo in a real browser (issue 4, item 8): amoauth with AMOAUTH_PLATFORM=kommo renders Kommo's
// button (kommo_oauth, data-theme, data-locale); the script opens the localized consent page; the
// person allows access for the Kommo account; the main window lands on the success page, and the
// account's API is reachable through the proxy.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BIN = process.env.AMOAUTH_BIN;
const CHROMIUM = process.env.AMOAUTH_CHROMIUM || '/usr/bin/chromium';
let dir, server, browser, ready, auth, stderr = '';

async function waitFor(predicate, what, limitMs = 30000) {
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    if (predicate()) return;
    if (server.exitCode !== null) throw new Error(`amoauth exited early:\n${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}:\n${stderr}`);
}

before(async () => {
  assert.ok(BIN, 'AMOAUTH_BIN must point at the built binary');
  dir = mkdtempSync(join(tmpdir(), 'amoauth-e2e-kommo-'));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AMO')));
  Object.assign(env, { AMOAUTH_PLATFORM: 'kommo', AMOAUTH_BUTTON_THEME: 'dark', AMOAUTH_BUTTON_LOCALE: 'es' });
  server = spawn(BIN, ['serve', '--sandbox', '--listen', '127.0.0.1:0',
                       '--database-url', `sqlite://${dir}/amoauth.db`,
                       '--ready-file', join(dir, 'ready.json')],
                 { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'] });
  server.stderr.on('data', (d) => { stderr += d; });
  await waitFor(() => existsSync(join(dir, 'ready.json')), 'amoauth to listen');
  ready = JSON.parse(readFileSync(join(dir, 'ready.json'), 'utf8'));
  auth = { Authorization: `Bearer ${readFileSync(join(dir, 'api.key'), 'utf8').trim()}` };
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('Kommo button → /es/oauth → Allow for the Kommo account → connected, proxy works', async () => {
  const page = await browser.newPage();
  await page.goto(`${ready.url}/connect`);
  const button = page.locator('#connect button');
  await button.waitFor({ timeout: 15000 });
  const script = page.locator('#connect script');
  assert.equal(await script.getAttribute('class'), 'kommo_oauth');
  assert.equal(await script.getAttribute('data-theme'), 'dark');
  assert.equal(await script.getAttribute('data-locale'), 'es');
  assert.equal(await script.getAttribute('data-color'), null);
  assert.equal(await script.getAttribute('data-title'), 'Connect Kommo');

  const [popup] = await Promise.all([page.waitForEvent('popup'), button.click()]);
  await popup.waitForLoadState();
  assert.equal(new URL(popup.url()).pathname, '/es/oauth');  // data-locale es (protocol §2.3)
  await popup.locator('#account_id').selectOption('31000001');
  const closed = popup.waitForEvent('close', { timeout: 15000 });
  await popup.locator('#allow').click();
  await closed;

  await page.waitForURL(/amo-crm\/callback\?/, { timeout: 15000 });
  const landed = new URL(page.url());
  assert.equal(landed.searchParams.get('referer'), 'example.kommo.com');
  assert.ok(landed.searchParams.get('client_id'));  // Kommo: client_id, not platform (§8)
  assert.equal(landed.searchParams.get('platform'), null);
  assert.match(await page.locator('#result').textContent(), /is connected/);
  assert.equal(await page.locator('#account-id').textContent(), '31000001');
  await page.close();

  const account = await fetch(`${ready.url}/v1/accounts/31000001`, { headers: auth });
  assert.equal(account.status, 200);
  const row = await account.json();
  assert.equal(row.base_domain, 'example.kommo.com');
  assert.equal(row.client_id, landed.searchParams.get('client_id'));
  const refreshed = await fetch(`${ready.url}/v1/accounts/31000001/refresh`, { method: 'POST', headers: auth });
  assert.equal(refreshed.status, 200);
  const proxied = await fetch(`${ready.url}/v1/accounts/31000001/proxy/api/v4/account`, { headers: auth });
  assert.equal(proxied.status, 200);
  assert.equal((await proxied.json()).id, 31000001);
});
