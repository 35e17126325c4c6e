// The certified OAuth server `oidc-provider` (npm, pinned in oracles/package.json), set up
// the way a hosted authorization server in front of an MCP server is: a test oracle that
// nobody here wrote.
//
//   node oidc_server.mjs --module PATH/oidc-provider/lib/index.js --issuer URL \
//        --resource URL [--resource URL ...] [--access-ttl SECONDS] [--port N]
//
// What it configures, and why (defaults read in lib/helpers/defaults.js of 9.13.3):
// - open dynamic client registration (RFC 7591; registration is off by default), so a
//   public client with token_endpoint_auth_method "none" registers itself;
// - PKCE required for every client (the default requires it for public clients only; only
//   S256 exists in this version);
// - RFC 8707 resource indicators (on by default, but the default getResourceServerInfo
//   refuses every resource): each --resource is a resource server whose scope is
//   "mcp:tools" and whose access tokens are RFC 9068 JWTs signed with a key generated
//   at start (the JWKS is served at /jwks), living --access-ttl seconds; a refresh without
//   `resource` gets the granted one (useGrantedResource);
// - rotating refresh tokens with no reuse grace (rotateRefreshToken: true; a spent refresh
//   token presented again is "already used": the grant is revoked, invalid_grant);
// - refresh tokens issued to every client allowed the refresh_token grant, without the
//   offline_access consent screen (issueRefreshToken), and not tied to the browser session;
// - no login form and no consent screen: /interaction/:uid finishes the interaction at
//   once (login as a fixed test user; consent grants exactly what oidc-provider computed
//   as missing), so a scripted $BROWSER that follows redirects with a cookie jar logs in.
//
// Prints one JSON line on stdout when listening ({"port": N, "issuer": ...}) and exits on
// SIGTERM/SIGINT or when its stdin closes (the test process that started it went away).
// Listens on 127.0.0.1 only.

import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    module: { type: 'string' },
    issuer: { type: 'string' },
    resource: { type: 'string', multiple: true, default: [] },
    'access-ttl': { type: 'string', default: '3600' },
    port: { type: 'string', default: '0' },
  },
});

function fail(message) {
  process.stderr.write(`oidc_server: ${message}\n`);
  process.exit(2);
}

if (!args.module) fail('--module (path to oidc-provider/lib/index.js) is required');
if (!args.issuer) fail('--issuer is required');
if (args.resource.length === 0) fail('at least one --resource is required');
const accessTtl = Number(args['access-ttl']);
if (!Number.isSafeInteger(accessTtl) || accessTtl <= 0) fail('--access-ttl must be a positive integer');
const port = Number(args.port);
if (!Number.isSafeInteger(port) || port < 0 || port > 65535) fail('--port must be 0..65535');

const { default: Provider, errors } = await import(pathToFileURL(args.module).href);

const SCOPE = 'mcp:tools';
const ACCOUNT = 'mcpkeeper-test-user';
const resources = new Set(args.resource.map((r) => r.replace(/\/+$/, '')));

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), use: 'sig', alg: 'RS256' };

const provider = new Provider(args.issuer, {
  jwks: { keys: [signingKey] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'offline_access', SCOPE],
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true, initialAccessToken: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, indicator) => {
        if (!resources.has(indicator.replace(/\/+$/, ''))) throw new errors.InvalidTarget();
        return {
          scope: SCOPE,
          audience: indicator,
          accessTokenTTL: accessTtl,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  pkce: { required: () => true },
  rotateRefreshToken: true,
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  expiresWithSession: async () => false,
  ttl: {
    AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? accessTtl,
    AuthorizationCode: 60,
    IdToken: 3600,
    Interaction: 600,
    Grant: 14 * 24 * 3600,
    Session: 24 * 3600,
    RefreshToken: 14 * 24 * 3600,
  },
  interactions: { url: async (_ctx, interaction) => `/interaction/${interaction.uid}` },
  renderError: async (ctx, out) => {
    ctx.type = 'json';
    ctx.body = out;
  },
});

// Diagnostics for a failing test, on stderr (the harness keeps it in a log file). Never a
// token value: oidc-provider's error_detail names the reason ("refresh token already used").
for (const event of ['grant.error', 'server_error', 'registration_create.error', 'authorization.error']) {
  provider.on(event, (_ctx, err) => {
    process.stderr.write(`${JSON.stringify({ event, error: err.error, detail: err.error_detail })}\n`);
  });
}
provider.on('grant.revoked', (_ctx, grantId) => {
  process.stderr.write(`${JSON.stringify({ event: 'grant.revoked', grantId })}\n`);
});

// Finish whatever the interaction asks for, at once: a user who is always signed in and
// approves exactly the scopes and resource scopes oidc-provider says are missing.
async function finishInteraction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params } = details;
  if (prompt.name === 'login') {
    await provider.interactionFinished(req, res, { login: { accountId: ACCOUNT } }, { mergeWithLastSubmission: false });
    return;
  }
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  const consent = details.grantId ? {} : { grantId };
  await provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
}

const handle = provider.callback();
const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url.startsWith('/interaction/')) {
    finishInteraction(req, res).catch((err) => {
      process.stderr.write(`${JSON.stringify({ event: 'interaction.error', message: String(err?.message ?? err) })}\n`);
      if (!res.headersSent) {
        res.statusCode = 400;
        res.setHeader('Content-Type', 'application/json');
      }
      res.end(JSON.stringify({ error: 'interaction_failed', error_description: String(err?.message ?? err) }));
    });
    return;
  }
  handle(req, res);
});

function stop() {
  server.close();
  server.closeAllConnections();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();

server.listen(port, '127.0.0.1', () => {
  const bound = server.address().port;
  process.stdout.write(`${JSON.stringify({ port: bound, issuer: args.issuer, pid: process.pid })}\n`);
});
