// amocrm-js (npm "amocrm-js" 3.x) through amoauth's proxy: the SDK keeps no OAuth code, client
// secret or refresh token; amoauth adds a fresh token to every call.
//
// amocrm-js always sends its requests with Node's https.request to https://{domain}:443{path}, over
// https.globalAgent, and has no option for a base URL, a port, plain HTTP or an agent. So:
//  - auth.bearer (its long-lived-token option) carries AMOAUTH_API_KEY: the SDK sends it as
//    "Authorization: Bearer …", which is what amoauth's proxy wants, and never asks amoCRM for a token;
//  - an https.Agent, installed as https.globalAgent, sends the requests for the accounts it knows to
//    amoauth instead, in plain HTTP, with /v1/accounts/{id}/proxy in front of the path. Requests to
//    any other host go out over TLS as before.
import https from 'node:https';
import net from 'node:net';
import amocrm from 'amocrm-js';

export class AmoauthProxyAgent extends https.Agent {
  /// amoauthUrl: amoauth's base URL (http://host:port); accounts: { 'example.amocrm.ru': 30000001 }.
  constructor(amoauthUrl, accounts) {
    super({ keepAlive: true });
    this.amoauth = new URL(amoauthUrl);
    this.accounts = new Map(Object.entries(accounts));
  }

  addRequest(request, options) {
    const id = this.accounts.get(options.host);
    if (id !== undefined) {
      request.path = `/v1/accounts/${id}/proxy${request.path}`;  // before the request line is written
    }
    return super.addRequest(request, options);
  }

  createConnection(options, callback) {
    if (!this.accounts.has(options.host)) {
      return super.createConnection(options, callback);  // TLS, as the SDK meant
    }
    return net.connect({ host: this.amoauth.hostname, port: Number(this.amoauth.port || 80) });
  }
}

/// An amocrm-js Client for `domain` that calls amoCRM through amoauth.
export function amoauthClient({ amoauthUrl, apiKey, domain, accountId }) {
  https.globalAgent = new AmoauthProxyAgent(amoauthUrl, { [domain]: accountId });
  return new amocrm.Client({ domain, auth: { bearer: apiKey } });
}

// Run as a script: the account, and the first page of deals, through amoauth.
if (import.meta.url === `file://${process.argv[1]}`) {
  const client = amoauthClient({
    amoauthUrl: process.env.AMOAUTH_URL ?? 'http://127.0.0.1:8080',
    apiKey: process.env.AMOAUTH_API_KEY,
    domain: process.env.AMO_DOMAIN ?? 'example.amocrm.ru',
    accountId: Number(process.env.AMO_ACCOUNT_ID ?? 30000001),
  });
  // amocrm-js throws only for amoCRM's own error bodies (they carry "status"); amoauth's errors
  // ({error, message, request_id}, e.g. 503 throttled or 409 reauth_required) come back as data:
  // check response.statusCode.
  const { response, data } = await client.request.get('/api/v4/account');
  if (response.statusCode !== 200) {
    console.error(`amoauth: ${response.statusCode} ${data.error}: ${data.message}`);
    process.exit(1);
  }
  console.log(`account: ${data.name} (${data.id})`);
  const leads = await client.leads.get({ limit: 5 });
  console.log(`leads: page ${leads.getPage()}, ${leads.getData().length} on it`);
  https.globalAgent.destroy();
}
