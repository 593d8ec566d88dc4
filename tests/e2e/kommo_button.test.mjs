// Kommo in a real browser (issue 4, item 8): amoauth with AMOAUTH_PLATFORM=kommo renders Kommo's
// button (kommo_oauth, data-theme, data-locale); the script opens the localized consent page; the
// person allows access for the Kommo account; the main window lands on the success page, and the
// account's API is reachable through the proxy.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAmoauth } from './harness.mjs';

let amoauth, browser, ready, auth;

before(async () => {
  amoauth = await startAmoauth({
    name: 'kommo',
    env: { AMOAUTH_PLATFORM: 'kommo', AMOAUTH_BUTTON_THEME: 'dark', AMOAUTH_BUTTON_LOCALE: 'es' },
  });
  ({ browser, ready, auth } = amoauth);
});

after(() => amoauth?.stop());

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
