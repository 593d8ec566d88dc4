<?php
// A token from amoauth, and amoCRM's API through its proxy, from PHP 7.4+ (the curl extension).
// Exit status: 0 done, 1 an error, 2 the account must be connected again.
$amoauthUrl = getenv('AMOAUTH_URL') ?: 'http://127.0.0.1:8080';
$apiKey = getenv('AMOAUTH_API_KEY');
$account = getenv('AMO_ACCOUNT_ID') ?: '30000001';
const RECONNECT = ['reauth_required', 'account_disconnected', 'long_lived_token_expired', 'long_lived_token_rejected'];

class AmoauthError extends Exception
{
    public $errorCode;

    public function __construct(int $status, array $body)
    {
        // amoauth's errors are {error, message, request_id}; amoCRM's own (through the proxy) are not.
        $this->errorCode = $body['error'] ?? "http_$status";
        parent::__construct("$status {$this->errorCode}: " . ($body['message'] ?? $body['detail'] ?? ''), $status);
    }
}

// Calls amoauth; the decoded JSON on 2xx. A 503 with Retry-After (throttled, amo_blocked,
// refresh_deferred) is retried once after the wait.
function amoauth(string $path, string $method = 'GET', $body = null, int $retries = 1)
{
    global $amoauthUrl, $apiKey;
    $retryAfter = 0;
    $ch = curl_init($amoauthUrl . $path);
    curl_setopt_array($ch, [
        CURLOPT_CUSTOMREQUEST => $method,
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_TIMEOUT => 30,
        CURLOPT_HTTPHEADER => ["Authorization: Bearer $apiKey", 'Content-Type: application/json'],
        CURLOPT_HEADERFUNCTION => function ($ch, $line) use (&$retryAfter) {
            if (stripos($line, 'Retry-After:') === 0) {
                $retryAfter = (int) trim(substr($line, 12));
            }
            return strlen($line);
        },
    ]);
    if ($body !== null) {
        curl_setopt($ch, CURLOPT_POSTFIELDS, json_encode($body));
    }
    $text = curl_exec($ch);
    if ($text === false) {
        throw new AmoauthError(0, ['error' => 'transport', 'message' => curl_error($ch)]);
    }
    $status = curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
    curl_close($ch);
    if ($status >= 200 && $status < 300) {
        return json_decode($text, true);
    }
    if ($status === 503 && $retries > 0 && $retryAfter > 0 && $retryAfter <= 30) {
        sleep($retryAfter);
        return amoauth($path, $method, $body, $retries - 1);
    }
    $error = json_decode($text, true);
    throw new AmoauthError($status, is_array($error) ? $error : ['message' => substr($text, 0, 200)]);
}

try {
    $token = amoauth("/v1/accounts/$account/token");
    // $token['access_token']: for calls of your own to https://{$token['base_domain']}/api/v4/…
    echo "token for {$token['base_domain']}: expires in {$token['expires_in']} s\n";
    $info = amoauth("/v1/accounts/$account/proxy/api/v4/account");
    echo "account: {$info['name']} ({$info['id']})\n";
} catch (AmoauthError $e) {
    fwrite(STDERR, 'amoauth: ' . $e->getMessage() . "\n");
    if (in_array($e->errorCode, RECONNECT, true)) {
        fwrite(STDERR, "account $account must be connected again\n");
        exit(2);
    }
    exit(1);
}
