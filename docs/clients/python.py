#!/usr/bin/env python3
"""A token from amoauth, and amoCRM's API through its proxy, from Python 3 (urllib.request).
Exit status: 0 done, 1 an error, 2 the account must be connected again."""
import json
import os
import sys
import time
import urllib.error
import urllib.request

AMOAUTH_URL = os.environ.get("AMOAUTH_URL", "http://127.0.0.1:8080")
API_KEY = os.environ["AMOAUTH_API_KEY"]
ACCOUNT = os.environ.get("AMO_ACCOUNT_ID", "30000001")
RECONNECT = {"reauth_required", "account_disconnected", "long_lived_token_expired", "long_lived_token_rejected"}


class AmoauthError(Exception):
    def __init__(self, status, body):
        # amoauth's errors are {error, message, request_id}; amoCRM's own (through the proxy) are not.
        self.status = status
        self.code = body.get("error", f"http_{status}")
        super().__init__(f"{status} {self.code}: {body.get('message', body.get('detail', ''))}")


def amoauth(path, method="GET", body=None, retries=1):
    """Calls amoauth; JSON on 2xx. A 503 with Retry-After (throttled, amo_blocked,
    refresh_deferred) is retried once after the wait."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(AMOAUTH_URL + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {API_KEY}",
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
            return json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        wait = e.headers.get("Retry-After", "")
        if e.code == 503 and retries > 0 and wait.isdigit() and 0 < int(wait) <= 30:
            time.sleep(int(wait))
            return amoauth(path, method, body, retries - 1)
        text = e.read()
        try:
            payload = json.loads(text)
        except ValueError:
            payload = {"message": text[:200].decode(errors="replace")}
        raise AmoauthError(e.code, payload if isinstance(payload, dict) else {}) from None


try:
    token = amoauth(f"/v1/accounts/{ACCOUNT}/token")
    # token["access_token"]: for calls of your own to https://{token["base_domain"]}/api/v4/…
    print(f"token for {token['base_domain']}: expires in {token['expires_in']} s")
    account = amoauth(f"/v1/accounts/{ACCOUNT}/proxy/api/v4/account")
    print(f"account: {account['name']} ({account['id']})")
except AmoauthError as e:
    print(f"amoauth: {e}", file=sys.stderr)
    if e.code in RECONNECT:
        print(f"account {ACCOUNT} must be connected again", file=sys.stderr)
        sys.exit(2)
    sys.exit(1)
