// node oidc-provider as the side-by-side peer of scripts/bench.sh peer: one
// confidential client with client credentials, introspection on, opaque
// access tokens by default and JWT (RS256) ones for the resource
// `urn:bench:jwt`. Prints `ISSUER <url>` once it listens.
//   node bench_op.mjs CLIENT_SECRET
import http from 'node:http';

const [secret] = process.argv.slice(2);
const { default: Provider } = await import('oidc-provider');
let provider;
const server = http.createServer((req, res) => provider.callback()(req, res));
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;
provider = new Provider(issuer, {
  clients: [{
    client_id: 'bench',
    client_secret: secret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'read',
  }],
  scopes: ['read'],
  cookies: { keys: ['bench-cookie-key'] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:bench:opaque',
      getResourceServerInfo: (ctx, resource) => ({
        scope: 'read',
        audience: resource,
        accessTokenTTL: 900,
        accessTokenFormat: resource === 'urn:bench:jwt' ? 'jwt' : 'opaque',
        ...(resource === 'urn:bench:jwt' ? { jwt: { sign: { alg: 'RS256' } } } : {}),
      }),
    },
  },
});
provider.on('server_error', (ctx, err) => console.error('op server_error', err));
console.log(`ISSUER ${issuer}`);
