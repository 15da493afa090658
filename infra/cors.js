'use strict';
// CORS at API Gateway (preflight answered there) for the origins in CORS_ORIGINS, none by
// default. The Lambdas validate the same variable at cold start (lib/config.ts) and add
// Access-Control-Allow-Origin to their own responses for listed origins only.
module.exports = async () => {
  const origins = (process.env.CORS_ORIGINS || '')
    .split(',')
    .map((origin) => origin.trim().toLowerCase())
    .filter(Boolean);
  if (origins.length === 0) return false;
  return {
    allowedOrigins: origins,
    allowedHeaders: ['Content-Type', 'Authorization'],
    allowedMethods: ['GET', 'POST', 'OPTIONS'],
    maxAge: 600,
  };
};
