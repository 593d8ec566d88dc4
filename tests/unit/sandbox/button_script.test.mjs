// The sandbox's button.js (protocol §2.3) run in node against a minimal fake DOM: the URL it
// opens for both variants and Kommo's locale path, and the error callback on a deny message.
// The script is read from the C++ source it is embedded in (SANDBOX_CONSENT_PAGES_CPP).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const source = readFileSync(process.env.SANDBOX_CONSENT_PAGES_CPP, 'utf8');
const buttonJs = source.split('R"JS(')[1].split(')JS"')[0];

/// Renders one button with `dataset`, clicks it, then delivers `message` to every listener.
function run(dataset, { kommo = false, message, globals = {} } = {}) {
  const listeners = [];
  const opened = [];
  let button;
  const script = {
    src: 'http://127.0.0.1:9/auth/button.js',
    dataset,
    parentNode: { insertBefore() {} },
    nextSibling: null,
    classList: { contains: (c) => c === (kommo ? 'kommo_oauth' : 'amocrm_oauth') },
  };
  const window = {
    location: { href: 'https://site.example/page', origin: 'https://site.example' },
    addEventListener: (type, f) => listeners.push(f),
    open: (url) => opened.push(url),
    screenX: 0, screenY: 0, outerWidth: 1000, outerHeight: 800,
    ...globals,
  };
  const document = {
    readyState: 'complete',
    documentElement: {},
    querySelectorAll: () => [script],
    createElement: () => {
      const el = { style: {}, appendChild() {}, setAttribute() {},
                   addEventListener: (type, f) => { el.click = f; } };
      button ??= el;
      return el;
    },
  };
  new Function('window', 'document', 'URL', 'screen', buttonJs)(window, document, URL, {});
  button.click({ preventDefault() {} });
  if (message) {
    for (const listener of listeners) listener({ origin: 'http://127.0.0.1:9', data: message });
  }
  return { url: new URL(opened[0]), dataset };
}

test('standard variant: client_id, state, mode, origin; the deny message calls the callback', () => {
  const calls = [];
  const { url, dataset } = run(
    { clientId: 'cid', errorCallback: 'onDenied', mode: 'post_message', state: 'st' },
    { message: { client_id: 'cid', error: 'access_denied' },
      globals: { onDenied: (data) => calls.push(data) } });
  assert.equal(url.pathname, '/oauth');
  assert.equal(url.searchParams.get('client_id'), 'cid');
  assert.equal(url.searchParams.get('state'), 'st');
  assert.equal(url.searchParams.get('mode'), 'post_message');
  assert.equal(url.searchParams.get('origin'), 'https://site.example/page');
  assert.deepEqual(calls, [{ client_id: 'cid', error: 'access_denied' }]);
  assert.equal(dataset.error, 'access_denied');
});

test('another button\'s deny does not call this one\'s callback', () => {
  const calls = [];
  run({ clientId: 'cid', errorCallback: 'onDenied' },
      { message: { client_id: 'other', error: 'access_denied' },
        globals: { onDenied: (data) => calls.push(data) } });
  assert.deepEqual(calls, []);
});

test('metadata variant builds the §2.2 URL with scopes[] and calls the callback on deny', () => {
  const calls = [];
  const { url } = run(
    { name: 'Shop', description: 'Sells', redirect_uri: 'https://a.example/cb',
      secrets_uri: 'https://a.example/secrets', logo: 'https://a.example/logo.png',
      scopes: 'crm,notifications', errorCallback: 'onDenied' },
    { message: { error: 'access_denied' }, globals: { onDenied: (data) => calls.push(data) } });
  assert.equal(url.searchParams.get('client_id'), null);
  assert.equal(url.searchParams.get('mode'), 'popup');
  assert.equal(url.searchParams.get('name'), 'Shop');
  assert.equal(url.searchParams.get('description'), 'Sells');
  assert.equal(url.searchParams.get('redirect_uri'), 'https://a.example/cb');
  assert.equal(url.searchParams.get('secrets_uri'), 'https://a.example/secrets');
  assert.equal(url.searchParams.get('logo'), 'https://a.example/logo.png');
  assert.deepEqual(url.searchParams.getAll('scopes[]'), ['crm', 'notifications']);
  assert.deepEqual(calls, [{ error: 'access_denied' }]);
});

test('Kommo: data-locale picks the localized consent path', () => {
  assert.equal(run({ clientId: 'c', locale: 'es' }, { kommo: true }).url.pathname, '/es/oauth');
  assert.equal(run({ clientId: 'c', locale: 'pt' }, { kommo: true }).url.pathname, '/br/oauth');
  assert.equal(run({ clientId: 'c', locale: 'id' }, { kommo: true }).url.pathname, '/id/oauth');
  assert.equal(run({ clientId: 'c', locale: 'en' }, { kommo: true }).url.pathname, '/oauth');
  assert.equal(run({ clientId: 'c', locale: 'es' }).url.pathname, '/oauth', 'amoCRM ignores it');
});

test('a callback name that is not an identifier is never evaluated', () => {
  const calls = [];
  run({ clientId: 'cid', errorCallback: 'onDenied();globalThis.pwned=1' },
      { message: { client_id: 'cid', error: 'access_denied' },
        globals: { onDenied: (data) => calls.push(data) } });
  assert.deepEqual(calls, []);
  assert.equal(globalThis.pwned, undefined);
});
