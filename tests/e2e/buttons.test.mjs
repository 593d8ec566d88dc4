// The site button in a real browser (issue 4, items 1 and 5): amoauth's /connect page and a button
// from GET /v1/button on an integrator's own page, pressed in popup and in post_message mode, with
// Allow and with Deny, and with markup injected into the button's options.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAmoauth } from './harness.mjs';

let amoauth, browser, ready, auth;

before(async () => {
  amoauth = await startAmoauth({ name: 'buttons' });
  ({ browser, ready, auth } = amoauth);
});

after(() => amoauth?.stop());

async function pressAndDecide(page, decision) {
  const [popup] = await Promise.all([page.waitForEvent('popup'), page.locator('#connect button').click()]);
  await popup.waitForLoadState();
  assert.match(popup.url(), /\/oauth\?/);
  const closed = popup.waitForEvent('close', { timeout: 15000 });
  await popup.locator(decision === 'allow' ? '#allow' : '#deny').click();
  return { popup, closed };
}

test('/connect, popup mode: Allow → the popup closes and the main window lands on the success page', async () => {
  const { page } = await amoauth.openConnectPage('popup');
  const { closed } = await pressAndDecide(page, 'allow');
  await closed;
  await page.waitForURL(/amo-crm\/callback\?/, { timeout: 15000 });
  assert.match(await page.locator('#result').textContent(), /is connected/);
  assert.equal(await page.locator('#account-id').textContent(), '30000001');
  await page.close();
});

test('/connect, post_message mode: the callback posts {status:"ok", account_id} to the opener and closes', async () => {
  const { page } = await amoauth.openConnectPage('post_message');
  const { closed } = await pressAndDecide(page, 'allow');
  await closed;  // the callback page closed itself after posting
  await page.waitForFunction(() => window.__received.some((m) => m.data && m.data.status), null, { timeout: 15000 });
  const received = await page.evaluate(() => window.__received.filter((m) => m.data && m.data.status));
  assert.deepEqual(received, [{ origin: ready.url,
                                data: { status: 'ok', account_id: 30000001, base_domain: 'example.amocrm.ru' } }]);
  // The opener stayed where it was and says what happened.
  assert.equal(new URL(page.url()).pathname, '/connect');
  const status = page.locator('#connect-status');
  assert.match(await status.textContent(), /example\.amocrm\.ru \(id 30000001\) is connected/);
  assert.equal(await status.getAttribute('data-account-id'), '30000001');
  assert.deepEqual(await page.evaluate(() => window.__errors), []);
  await page.close();
});

test('/connect, popup mode: Deny → the error callback is called and the page says access was not granted', async () => {
  const { page, dialogs } = await amoauth.openConnectPage('popup');
  const { closed } = await pressAndDecide(page, 'deny');
  await closed;
  await page.waitForFunction(() => window.__errors.length > 0, null, { timeout: 15000 });
  const errors = await page.evaluate(() => window.__errors);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].error, 'access_denied');
  assert.equal(new URL(page.url()).pathname, '/connect');
  assert.match(await page.locator('#connect-status').textContent(), /Access was not granted/);
  assert.equal(await page.locator('#connect-status').getAttribute('data-error'), 'access_denied');
  assert.deepEqual(dialogs, []);
  await page.close();
});

test('/connect, post_message mode: Deny → the callback posts the error; the page calls its error callback', async () => {
  const { page } = await amoauth.openConnectPage('post_message');
  const { closed } = await pressAndDecide(page, 'deny');
  await closed;
  await page.waitForFunction(() => window.__errors.length > 0, null, { timeout: 15000 });
  const received = await page.evaluate(() => window.__received.filter((m) => m.data && m.data.status));
  assert.equal(received.length, 1);
  assert.equal(received[0].origin, ready.url);
  assert.equal(received[0].data.status, 'error');
  assert.equal(received[0].data.error, 'access_denied');
  const errors = await page.evaluate(() => window.__errors);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].error, 'access_denied');
  assert.match(errors[0].message, /Access was not granted/);
  assert.match(await page.locator('#connect-status').textContent(), /Access was not granted/);
  await page.close();
});

test('GET /v1/button on the integrator\'s page: injected markup stays text; post_message reaches the opener', async () => {
  const evilTitle = '"><img src=x onerror="window.__pwned=1;alert(1)"><script>window.__pwned=2</script>';
  const query = new URLSearchParams({ mode: 'post_message', title: evilTitle, error_callback: 'onAmoError' });
  const made = await fetch(`${ready.url}/v1/button?${query}`, { headers: auth });
  assert.equal(made.status, 200);
  const button = await made.json();
  assert.equal(button.variant, 'existing');

  // Options that could run code are refused outright, naming the field.
  for (const [name, value] of [['error_callback', 'alert(1)'], ['class_name', 'x" onclick="alert(1)'],
                               ['color', 'red;background:url(javascript:alert(1))']]) {
    const refused = await fetch(`${ready.url}/v1/button?${new URLSearchParams({ [name]: value })}`, { headers: auth });
    assert.equal(refused.status, 400, name);
    assert.equal((await refused.json()).field, name);
  }

  // The integrator's own page pastes the HTML as the docs say and listens for the result. It must
  // run on the configured postMessage origin (here amoauth's own): the test writes it into a
  // document loaded from there (a page with no CSP of its own, so nothing but escaping protects it).
  const page = await browser.newPage();
  const dialogs = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
  const integratorPage = `<!doctype html><html><body>
<script>
  window.__received = [];
  window.addEventListener('message', (e) => {
    if (e.origin === ${JSON.stringify(ready.url)} && e.data && e.data.status) window.__received.push(e.data);
  });
  function onAmoError(data) { window.__errors = (window.__errors || []).concat([data]); }
</script>
<div id="connect">${button.html}</div>
</body></html>`;
  await page.goto(`${ready.url}/healthz`);
  await page.setContent(integratorPage);
  const rendered = page.locator('#connect button');
  await rendered.waitFor({ timeout: 15000 });
  assert.equal(await rendered.textContent(), `amo${evilTitle}`);  // logo text + the title, verbatim
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.equal(await page.locator('img').count(), 0);
  assert.deepEqual(dialogs, []);

  const { closed } = await pressAndDecide(page, 'allow');
  await closed;
  await page.waitForFunction(() => window.__received.length > 0, null, { timeout: 15000 });
  assert.deepEqual(await page.evaluate(() => window.__received),
                   [{ status: 'ok', account_id: 30000001, base_domain: 'example.amocrm.ru' }]);
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.deepEqual(dialogs, []);
  await page.close();
});
