#!/bin/sh
# A token from amoauth, and amoCRM's API through its proxy, from the shell (curl, jq).
# Exit status: 0 done, 1 an error, 2 the account must be connected again.
set -eu
AMOAUTH_URL=${AMOAUTH_URL:-http://127.0.0.1:8080}
ACCOUNT=${AMO_ACCOUNT_ID:-30000001}
: "${AMOAUTH_API_KEY:?set AMOAUTH_API_KEY (data/api.key in sandbox mode)}"

# call PATH: the body on stdout if amoauth answers 2xx; else its JSON error on stderr, and exit.
# --retry waits as Retry-After says on a 503 (throttled, amo_blocked, refresh_deferred).
call() {
  body=$(mktemp)
  status=$(curl -sS --retry 1 --retry-max-time 30 -o "$body" -w '%{http_code}' \
                -H "Authorization: Bearer $AMOAUTH_API_KEY" "$AMOAUTH_URL$1") || { rm -f "$body"; exit 1; }
  if [ "$status" -ge 200 ] && [ "$status" -lt 300 ]; then
    cat "$body"; rm -f "$body"; return 0
  fi
  error=$(jq -r '.error // "http_'"$status"'"' "$body" 2>/dev/null || echo "http_$status")
  echo "amoauth: $status $error: $(jq -r '.message // .detail // empty' "$body" 2>/dev/null)" >&2
  rm -f "$body"
  case $error in
    reauth_required|account_disconnected|long_lived_token_expired|long_lived_token_rejected)
      echo "account $ACCOUNT must be connected again" >&2; exit 2 ;;
  esac
  exit 1
}

token=$(call "/v1/accounts/$ACCOUNT/token")
ACCESS_TOKEN=$(printf '%s' "$token" | jq -r .access_token)   # for calls of your own to amoCRM
echo "token for $(printf '%s' "$token" | jq -r .base_domain): expires in $(printf '%s' "$token" | jq -r .expires_in) s"

account=$(call "/v1/accounts/$ACCOUNT/proxy/api/v4/account")
echo "account: $(printf '%s' "$account" | jq -r '"\(.name) (\(.id))"')"
