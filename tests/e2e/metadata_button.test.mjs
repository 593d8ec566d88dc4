// The metadata site button in a real browser (issue 4, items 1, 2 and 5): amoauth's /connect page
// configured with AMOAUTH_BUTTON_VARIANT=metadata, pressed in popup and in post_message mode. The
// sandbox's consent creates a new external integration and POSTs its keys to amoauth's secrets
// webhook; the account ends up connected under that new integration. Deny calls the page's error
// callback; markup injected into the name and description stays text.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAmoauth } from './harness.mjs';

const EVIL_NAME = '"><img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';
const EVIL_DESCRIPTION = '</script><svg onload="window.__pwned=3">& more';
let amoauth, browser, ready, auth;

before(async () => {
  amoauth = await startAmoauth({
    name: 'metadata',
    env: {
      AMOAUTH_BUTTON_VARIANT: 'metadata',
      AMOAUTH_BUTTON_NAME: EVIL_NAME,
      AMOAUTH_BUTTON_DESCRIPTION: EVIL_DESCRIPTION,
      AMOAUTH_BUTTON_SCOPES: 'crm,notifications',
    },
  });
  ({ browser, ready, auth } = amoauth);
});

after(() => amoauth?.stop());

/// The external integrations the sandbox has created in an account so far (client ids).
async function createdIntegrations() {
  const listed = await (await fetch(`${ready.sandbox_url}/sandbox/integrations`)).json();
  return listed.filter((i) => i.account_id === 30000001).map((i) => i.client_id);
}

/// amoauth's rows for account 30000001 (one per integration).
async function connectedClientIds() {
  const answer = await fetch(`${ready.url}/v1/accounts`, { headers: auth });
  assert.equal(answer.status, 200);
  return (await answer.json()).accounts.filter((a) => a.account_id === 30000001).map((a) => a.client_id);
}

/// Presses the button; the metadata consent opens in a popup; presses Allow or Deny there.
async function pressAndDecide(page, decision) {
  const [popup] = await Promise.all([page.waitForEvent('popup'), page.locator('#connect button').click()]);
  await popup.waitForLoadState();
  const consent = new URL(popup.url());
  assert.equal(consent.pathname.replace(/\/$/, ''), '/oauth');
  assert.equal(consent.searchParams.get('client_id'), null);  // the metadata variant
  assert.equal(consent.searchParams.get('secrets_uri'), `${ready.url}/api/v1/integrations/amo-crm/secrets`);
  // The sandbox's page shows the name and description as text.
  assert.equal(await popup.locator('#integration-name').textContent(), EVIL_NAME);
  assert.equal(await popup.locator('#integration-description').textContent(), EVIL_DESCRIPTION);
  const closed = popup.waitForEvent('close', { timeout: 15000 });
  await popup.locator(decision === 'allow' ? '#allow' : '#deny').click();
  return { popup, closed };
}

test('/connect renders the metadata button with the name and description escaped', async () => {
  const { page, dialogs } = await amoauth.openConnectPage('popup');
  const html = await page.locator('#connect').innerHTML();
  assert.match(html, /class="amocrm_oauth"/);
  assert.doesNotMatch(html, /data-client-id/);
  assert.match(html, /data-name="&quot;&gt;&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;/);
  assert.match(html, /data-secrets_uri="http:\/\/127\.0\.0\.1:\d+\/api\/v1\/integrations\/amo-crm\/secrets"/);
  // What the script reads back from the attributes is the text as configured, nothing ran.
  const script = page.locator('#connect script');
  assert.equal(await script.getAttribute('data-name'), EVIL_NAME);
  assert.equal(await script.getAttribute('data-description'), EVIL_DESCRIPTION);
  assert.equal(await page.locator('#connect img, #connect svg').count(), 0);
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.deepEqual(dialogs, []);
  await page.close();
});

test('metadata button, popup mode: Allow → keys posted to amoauth → the main window lands connected under the new integration', async () => {
  const before = await createdIntegrations();
  const { page, dialogs } = await amoauth.openConnectPage('popup');
  const { closed } = await pressAndDecide(page, 'allow');
  await closed;
  await page.waitForURL(/amo-crm\/callback\?/, { timeout: 15000 });
  assert.match(await page.locator('#result').textContent(), /is connected/);
  assert.equal(await page.locator('#account-id').textContent(), '30000001');
  const created = (await createdIntegrations()).filter((id) => !before.includes(id));
  assert.equal(created.length, 1);
  assert.equal(new URL(page.url()).searchParams.get('client_id'), created[0]);
  assert.ok((await connectedClientIds()).includes(created[0]));
  const account = await fetch(`${ready.url}/v1/accounts/30000001?client_id=${created[0]}`, { headers: auth });
  assert.equal(account.status, 200);
  assert.equal((await account.json()).status, 'active');
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.deepEqual(dialogs, []);
  await page.close();
});

test('metadata button, post_message mode: the opener gets {status:"ok", account_id} for the new integration', async () => {
  const before = await createdIntegrations();
  const { page } = await amoauth.openConnectPage('post_message');
  const { closed } = await pressAndDecide(page, 'allow');
  await closed;
  await page.waitForFunction(() => window.__received.some((m) => m.data && m.data.status), null, { timeout: 15000 });
  const received = await page.evaluate(() => window.__received.filter((m) => m.data && m.data.status));
  assert.deepEqual(received, [{ origin: ready.url,
                                data: { status: 'ok', account_id: 30000001, base_domain: 'example.amocrm.ru' } }]);
  assert.equal(new URL(page.url()).pathname, '/connect');
  assert.match(await page.locator('#connect-status').textContent(), /\(id 30000001\) is connected/);
  assert.deepEqual(await page.evaluate(() => window.__errors), []);
  const created = (await createdIntegrations()).filter((id) => !before.includes(id));
  assert.equal(created.length, 1);
  assert.ok((await connectedClientIds()).includes(created[0]));
  await page.close();
});

test('metadata button, popup mode: Deny → the page\'s error callback, nothing created', async () => {
  const before = await createdIntegrations();
  const rows = await connectedClientIds();
  const { page, dialogs } = await amoauth.openConnectPage('popup');
  const { closed } = await pressAndDecide(page, 'deny');
  await closed;
  await page.waitForFunction(() => window.__errors.length > 0, null, { timeout: 15000 });
  const errors = await page.evaluate(() => window.__errors);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].error, 'access_denied');
  assert.equal(new URL(page.url()).pathname, '/connect');
  assert.match(await page.locator('#connect-status').textContent(), /Access was not granted/);
  assert.deepEqual(await createdIntegrations(), before);
  assert.deepEqual(await connectedClientIds(), rows);
  assert.deepEqual(dialogs, []);
  await page.close();
});

test('metadata button, post_message mode: Deny → the callback posts the error; the error callback runs', async () => {
  const { page } = await amoauth.openConnectPage('post_message');
  const { closed } = await pressAndDecide(page, 'deny');
  await closed;
  await page.waitForFunction(() => window.__errors.length > 0, null, { timeout: 15000 });
  const received = await page.evaluate(() => window.__received.filter((m) => m.data && m.data.status));
  assert.equal(received.length, 1);
  assert.equal(received[0].origin, ready.url);
  assert.deepEqual([received[0].data.status, received[0].data.error], ['error', 'access_denied']);
  const errors = await page.evaluate(() => window.__errors);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].error, 'access_denied');
  assert.match(await page.locator('#connect-status').textContent(), /Access was not granted/);
  await page.close();
});

test('GET /v1/button?variant=metadata: injected name and description stay text on the integrator\'s page', async () => {
  const query = new URLSearchParams({ variant: 'metadata', name: EVIL_NAME, description: EVIL_DESCRIPTION,
                                      error_callback: 'onAmoError' });
  const made = await fetch(`${ready.url}/v1/button?${query}`, { headers: auth });
  assert.equal(made.status, 200);
  const button = await made.json();
  assert.equal(button.variant, 'metadata');
  assert.doesNotMatch(button.html, /<img|<svg|<\/script><svg/);
  // URLs that are not https (or http on a loopback host) are refused, naming the field.
  for (const field of ['logo', 'redirect_uri', 'secrets_uri']) {
    const refused = await fetch(`${ready.url}/v1/button?${new URLSearchParams({
      variant: 'metadata', name: 'n', description: 'd', [field]: 'javascript:alert(1)' })}`, { headers: auth });
    assert.equal(refused.status, 400, field);
    assert.equal((await refused.json()).field, field);
  }
  const page = await browser.newPage();
  const dialogs = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
  await page.goto(`${ready.url}/healthz`);
  await page.setContent(`<!doctype html><html><body><div id="connect">${button.html}</div></body></html>`);
  await page.locator('#connect button').waitFor({ timeout: 15000 });
  assert.equal(await page.locator('#connect script').getAttribute('data-name'), EVIL_NAME);
  assert.equal(await page.locator('img, svg').count(), 0);
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.deepEqual(dialogs, []);
  await page.close();
});
