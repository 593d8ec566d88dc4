// The admin UI as an operator uses it, in Debian's chromium: log in with the API key (a wrong
// one first), connect a new account from the UI's button, see it listed with its status, domain
// and relative expiry, open it, force a refresh and see the event appear, disconnect it. Saves a
// screenshot of the account page for CI (AMOAUTH_ARTIFACTS_DIR, build/artifacts/admin-ui.png).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startAmoauth } from './harness.mjs';

let amoauth;

before(async () => {
  amoauth = await startAmoauth({ name: 'admin' });
});

after(() => amoauth?.stop());

test('admin UI: login, accounts, an account, force a refresh, disconnect', async () => {
  const { browser, ready, auth } = amoauth;
  const apiKey = auth.Authorization.slice('Bearer '.length);
  const context = await browser.newContext();
  const page = await context.newPage();
  const cspViolations = [];
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text()); });

  // Not logged in: the UI sends the person to the login form.
  await page.goto(`${ready.url}/admin`);
  assert.match(page.url(), /\/admin\/login$/);

  // A wrong key: a clear error, no session.
  await page.fill('#api_key', 'not-the-key');
  await page.click('#login');
  assert.match(await page.locator('#login-error').textContent(), /not the API key/);
  assert.equal((await context.cookies()).length, 0);

  await page.fill('#api_key', apiKey);
  await page.click('#login');
  await page.waitForURL(/\/admin$/);
  assert.ok(!page.url().includes(apiKey), 'the key is never in an address');
  const [cookie] = await context.cookies();
  assert.equal(cookie.name, 'amoauth_admin');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  assert.equal(cookie.path, '/admin');
  assert.match(await page.locator('#no-accounts').textContent(), /No account is connected yet/);

  // Connect a new account from the UI: the existing /connect page and its site button.
  await page.click('#connect-new');
  await page.waitForURL(/\/connect$/);
  const button = page.locator('#connect button');
  await button.waitFor({ timeout: 15000 });
  const [popup] = await Promise.all([page.waitForEvent('popup'), button.click()]);
  await popup.waitForLoadState();
  await popup.locator('#allow').click();
  await page.waitForURL(/amo-crm\/callback\?/, { timeout: 15000 });
  assert.match(await page.locator('#result').textContent(), /is connected/);

  // The list: status, domain, the token's expiry as relative time.
  await page.goto(`${ready.url}/admin`);
  const row = page.locator('#accounts tr[data-account-id="30000001"]');
  await row.waitFor();
  assert.equal(await row.locator('.domain').textContent(), 'example.amocrm.ru');
  assert.equal(await row.locator('.status-cell').textContent(), 'active');
  assert.equal(await row.locator('.expires').textContent(), 'in 24 h');
  assert.equal(await row.locator('.last-refresh').textContent(), 'just now');
  assert.equal(await row.locator('.last-error').textContent(), 'none');

  // The account: details and history.
  await row.locator('.account-link').click();
  await page.waitForURL(/\/admin\/accounts\/30000001$/);
  assert.match(await page.locator('#account-title').textContent(), /Account 30000001\s+example\.amocrm\.ru/);
  const events = page.locator('#events tr.event');
  assert.equal(await events.count(), 1);
  assert.equal(await events.first().getAttribute('data-type'), 'account.connected');

  // Force a refresh: the notice, and the event on top of the history.
  const journalBefore = await (await fetch(`${ready.sandbox_url}/sandbox/journal`)).json();
  await page.click('button.refresh');
  await page.waitForURL(/\?done=refreshed$/);
  assert.match(await page.locator('#notice').textContent(), /Refreshed/);
  assert.equal(await events.count(), 2);
  assert.equal(await events.first().getAttribute('data-type'), 'token.refreshed');
  assert.match(await events.first().textContent(), /just now/);
  const journalAfter = await (await fetch(`${ready.sandbox_url}/sandbox/journal`)).json();
  assert.equal(journalAfter.counters.refreshes, journalBefore.counters.refreshes + 1);

  const artifacts = process.env.AMOAUTH_ARTIFACTS_DIR;
  if (artifacts) {
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, 'admin-ui.png'), fullPage: true });
  }

  // Disconnect: the page asks first (admin.js); dismissing changes nothing.
  const dialogs = [];
  page.once('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
  await page.click('button.disconnect');
  await page.waitForTimeout(200);
  assert.match(dialogs[0] ?? '', /Disconnect account 30000001/);
  assert.match(page.url(), /\?done=refreshed$/);
  page.once('dialog', (d) => d.accept());
  await page.click('button.disconnect');
  await page.waitForURL(/\?done=disconnected$/);
  assert.match(await page.locator('#notice').textContent(), /Disconnected/);
  assert.equal(await page.locator('.connection .status-cell').textContent(), 'disconnected');
  assert.equal(await events.first().getAttribute('data-type'), 'account.disconnected');
  assert.equal(await page.locator('button.disconnect').count(), 0);
  const token = await fetch(`${ready.url}/v1/accounts/30000001/token`, { headers: auth });
  assert.equal(token.status, 409);

  // The integrations page, then log out: the cookie no longer opens anything.
  await page.click('#nav-integrations');
  await page.waitForURL(/\/admin\/integrations$/);
  assert.equal(await page.locator('#integrations tbody tr').count(), 1);
  await page.click('#logout');
  await page.waitForURL(/\/admin\/login$/);
  await page.goto(`${ready.url}/admin`);
  assert.match(page.url(), /\/admin\/login$/);

  assert.deepEqual(cspViolations, [], 'the pages run within their CSP');
  await context.close();
});
