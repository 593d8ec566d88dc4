// What every browser test needs: the built amoauth serving with its sandbox in a temp dir
// (SQLite, port 0, a readiness file), its API key, and Debian's chromium driven by playwright-core.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

/// The binary under test; ctest sets AMOAUTH_BIN (tests/e2e/CMakeLists.txt).
export const BIN = process.env.AMOAUTH_BIN;
const CHROMIUM = process.env.AMOAUTH_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                       '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/// Starts `amoauth serve --sandbox` on 127.0.0.1:0 with a SQLite database in a fresh temp dir
/// (amoauth-e2e-<name>-…), in the environment without its AMO* variables plus `env`, with `args`
/// after the common flags; waits for its ready.json and launches chromium. Returns
///   dir      the temp dir (amoauth's cwd: amoauth.db, api.key, sandbox.env, ready.json)
///   server   the amoauth child process
///   ready    ready.json ({url, sandbox_url, …})
///   auth     headers carrying the generated API key ({Authorization: 'Bearer …'})
///   browser  the playwright Browser
///   stderr() what amoauth has written to stderr so far
///   waitFor(predicate, what, limitMs = 30000) polls until predicate() holds; throws, with
///            amoauth's stderr, on timeout or when amoauth exits
///   openConnectPage(mode) opens amoauth's /connect?mode=<mode> in a new page, recording every
///            message the page receives (window.__received), every call of its error callback
///            (window.__errors; wrapping, not replacing, the page's own) and any dialog an
///            injected script could open; resolves to { page, dialogs }
///   stop()   closes the browser, stops amoauth (SIGTERM, waits) and removes the dir; safe to
///            call more than once.
/// `browser: false` starts no chromium (for tests that only speak HTTP); `browser` is then undefined.
/// If starting fails, whatever was started is stopped before the error is thrown.
export async function startAmoauth({ name = '', env = {}, args = [], browser = true } = {}) {
  assert.ok(BIN, 'AMOAUTH_BIN must point at the built binary');
  const dir = mkdtempSync(join(tmpdir(), name ? `amoauth-e2e-${name}-` : 'amoauth-e2e-'));
  const childEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AMO')));
  Object.assign(childEnv, env);
  const server = spawn(BIN, ['serve', '--sandbox', '--listen', '127.0.0.1:0',
                             '--database-url', `sqlite://${dir}/amoauth.db`,
                             '--ready-file', join(dir, 'ready.json'), ...args],
                       { cwd: dir, env: childEnv, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  server.stderr.on('data', (d) => { stderr += d; });

  const amoauth = {
    dir, server, ready: undefined, auth: undefined, browser: undefined,
    stderr: () => stderr,
    async waitFor(predicate, what, limitMs = 30000) {
      const deadline = Date.now() + limitMs;
      while (Date.now() < deadline) {
        if (predicate()) return;
        if (server.exitCode !== null) throw new Error(`amoauth exited early:\n${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`timed out waiting for ${what}:\n${stderr}`);
    },
    async openConnectPage(mode) {
      const page = await amoauth.browser.newPage();
      const dialogs = [];
      page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
      await page.goto(`${amoauth.ready.url}/connect?mode=${mode}`);
      await page.locator('#connect button').waitFor({ timeout: 15000 });
      await page.evaluate(() => {
        window.__received = [];
        window.addEventListener('message', (e) => window.__received.push({ origin: e.origin, data: e.data }));
        window.__errors = [];
        const own = window.amoauthConnectFailed;
        window.amoauthConnectFailed = (data) => { window.__errors.push(data); own(data); };
      });
      return { page, dialogs };
    },
    async stop() {
      await amoauth.browser?.close();
      amoauth.browser = undefined;
      if (server.exitCode === null && server.signalCode === null) {
        const exited = new Promise((r) => server.once('exit', r));
        server.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    await amoauth.waitFor(() => existsSync(join(dir, 'ready.json')), 'amoauth to listen');
    amoauth.ready = JSON.parse(readFileSync(join(dir, 'ready.json'), 'utf8'));
    amoauth.auth = { Authorization: `Bearer ${readFileSync(join(dir, 'api.key'), 'utf8').trim()}` };
    if (browser) {
      amoauth.browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    }
  } catch (error) {
    await amoauth.stop();
    throw error;
  }
  return amoauth;
}

/// The integration amoauth registered with its sandbox (sandbox.env): { clientId, clientSecret }.
export function sandboxIntegration(amoauth) {
  const env = readFileSync(join(amoauth.dir, 'sandbox.env'), 'utf8');
  return { clientId: env.match(/^AMO_CLIENT_ID=(.*)$/m)[1], clientSecret: env.match(/^AMO_CLIENT_SECRET=(.*)$/m)[1] };
}

/// Connects `accountId` without a browser, as the site button would: POST /v1/connect for a
/// state, press Allow (or Deny, `decision`) on the sandbox's consent page in post_message mode,
/// and follow its redirect to amoauth's callback. Resolves to the callback's Response.
export async function connectWithoutBrowser(amoauth, accountId = 30000001, decision = 'allow') {
  const started = await fetch(`${amoauth.ready.url}/v1/connect`, {
    method: 'POST', headers: { ...amoauth.auth, 'Content-Type': 'application/json' },
    body: JSON.stringify({ mode: 'post_message' }) });
  assert.equal(started.status, 201, await started.clone().text());
  const { state } = await started.json();
  const form = new URLSearchParams({ client_id: sandboxIntegration(amoauth).clientId, state, mode: 'post_message',
                                     account_id: String(accountId), decision });
  const decided = await fetch(`${amoauth.ready.sandbox_url}/oauth/decision`, {
    method: 'POST', body: form, redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
  assert.equal(decided.status, 302, await decided.text());
  return fetch(decided.headers.get('location'), { redirect: 'manual' });
}
