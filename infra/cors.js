'use strict';
// The one CORS definition of the API: API Gateway's (provider.httpApi.cors), from the stage's
// `corsOrigins` param (comma-separated exact origins, none by default). API Gateway answers the
// preflight itself and adds Access-Control-Allow-Origin to responses for listed origins only,
// never Access-Control-Allow-Credentials (the API takes bearer tokens, not cookies); with no
// origin listed there is no CORS at all. Retry-After is exposed: without it a page cannot read how
// long a 429 or 503 asks it to wait (it is not a CORS-safelisted response header). The Lambdas set no CORS header: API Gateway would ignore
// it. The local stack enforces the same semantics (patches/, serverless-offline).

/** Exact origins only: scheme, host, optional port; no wildcard, path or trailing slash. */
const ORIGIN = /^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$/;

function corsConfiguration(raw) {
  const origins = String(raw ?? '')
    .split(',')
    .map((origin) => origin.trim())
    .filter(Boolean);
  for (const origin of origins) {
    if (!ORIGIN.test(origin)) {
      throw new Error(`corsOrigins (CORS_ORIGINS) must list exact origins like https://app.example.com (no wildcard, path or trailing slash), got "${origin}"`);
    }
  }
  if (origins.length === 0) return false;
  return {
    allowedOrigins: origins.map((origin) => origin.toLowerCase()),
    allowedHeaders: ['Content-Type', 'Authorization'],
    allowedMethods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
    exposedResponseHeaders: ['Retry-After'],
    maxAge: 600,
  };
}

module.exports = async ({ resolveVariable }) => corsConfiguration(await resolveVariable("param:corsOrigins, ''"));
module.exports.corsConfiguration = corsConfiguration;
