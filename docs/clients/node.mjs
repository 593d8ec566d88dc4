// A token from amoauth, and amoCRM's API through its proxy, from Node.js 18+ (global fetch).
// Exit status: 0 done, 1 an error, 2 the account must be connected again.
const AMOAUTH_URL = process.env.AMOAUTH_URL ?? 'http://127.0.0.1:8080';
const API_KEY = process.env.AMOAUTH_API_KEY;
const ACCOUNT = process.env.AMO_ACCOUNT_ID ?? '30000001';
const RECONNECT = ['reauth_required', 'account_disconnected', 'long_lived_token_expired', 'long_lived_token_rejected'];

class AmoauthError extends Error {
  constructor(status, body) {
    // amoauth's errors are {error, message, request_id}; amoCRM's own (through the proxy) are not.
    super(`${status} ${body.error ?? `http_${status}`}: ${body.message ?? body.detail ?? ''}`);
    this.status = status;
    this.code = body.error ?? `http_${status}`;
  }
}

// GET (or `init`) an amoauth path; JSON on 2xx. A 503 with Retry-After (throttled, amo_blocked,
// refresh_deferred) is retried once after the wait.
async function amoauth(path, init = {}, retries = 1) {
  const res = await fetch(AMOAUTH_URL + path, {
    ...init, headers: { Authorization: `Bearer ${API_KEY}`, ...init.headers } });
  if (res.ok) return res.status === 204 ? null : res.json();
  const wait = Number(res.headers.get('retry-after'));
  if (res.status === 503 && retries > 0 && wait > 0 && wait <= 30) {
    await new Promise((resolve) => setTimeout(resolve, wait * 1000));
    return amoauth(path, init, retries - 1);
  }
  const text = await res.text();
  let body = {};
  try { body = JSON.parse(text); } catch { body = { message: text.slice(0, 200) }; }
  throw new AmoauthError(res.status, body);
}

try {
  const token = await amoauth(`/v1/accounts/${ACCOUNT}/token`);
  // token.access_token: for calls of your own to https://{token.base_domain}/api/v4/…
  console.log(`token for ${token.base_domain}: expires in ${token.expires_in} s`);
  const account = await amoauth(`/v1/accounts/${ACCOUNT}/proxy/api/v4/account`);
  console.log(`account: ${account.name} (${account.id})`);
} catch (e) {
  console.error(`amoauth: ${e.message}`);
  if (RECONNECT.includes(e.code)) {
    console.error(`account ${ACCOUNT} must be connected again`);
    process.exit(2);
  }
  process.exit(1);
}
