// OpenID providers for the SSO tests, on a loopback port chosen by the OS.
//
//   node oidc_op.mjs real    REDIRECT_URI [CLIENT_SECRET]
//   node oidc_op.mjs hostile REDIRECT_URI
//
// `real` is node `oidc-provider` (OpenID Certified) with one confidential
// client and fixed accounts; its development interactions give a login form
// (any password) and a consent form that an HTTP client can submit.
// `hostile` is an attacker-controlled provider: discovery, JWKS, an authorize
// endpoint that answers at once, and a token endpoint whose ID token is
// broken in the way last set by `POST /mode` (JSON `{"mode": "..."}`), or
// signed with a key it has just rotated to (`rotated`).
// Either prints `ISSUER <url>` once it listens.
import http from 'node:http';
import crypto from 'node:crypto';

const [kind, redirectUri, secret = 'op-client-secret-for-tests-only'] = process.argv.slice(2);
const CLIENT_ID = 'gatehouse';

const ACCOUNTS = {
  alice: { email: 'alice@corp.example', email_verified: true, name: 'Alice Anders', groups: ['gh-admins', 'staff'] },
  bob: { email: 'bob@corp.example', email_verified: true, name: 'Bob Berg', groups: ['staff'] },
  mallory: { email: 'mallory@corp.example', email_verified: false, name: 'Mallory Unverified', groups: [] },
  // Its ID token carries only `sub`: the relying party must ask userinfo.
  carol: { email: 'carol@corp.example', email_verified: true, name: 'Carol Claims', groups: [] },
};

function listen(handler) {
  return new Promise((resolve) => {
    const server = http.createServer(handler);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

async function real() {
  const { default: Provider } = await import('oidc-provider');
  let provider;
  const server = await listen((req, res) => provider.callback()(req, res));
  const issuer = `http://127.0.0.1:${server.address().port}`;
  provider = new Provider(issuer, {
    clients: [{
      client_id: CLIENT_ID,
      client_secret: secret,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
    },
    scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
    // carol's claims are left out of the ID token (userinfo has them).
    conformIdTokenClaims: true,
    ttl: { IdToken: 300, AccessToken: 300, AuthorizationCode: 60, Interaction: 600, Session: 600, Grant: 600 },
    cookies: { keys: ['gatehouse-test-op-cookie-key'] },
    findAccount: (ctx, id) => {
      const a = ACCOUNTS[id];
      if (!a) return undefined;
      return {
        accountId: id,
        claims: (use) => (id === 'carol' && use === 'id_token') ? { sub: id } : { sub: id, ...a },
      };
    },
  });
  provider.on('server_error', (ctx, err) => console.error('op server_error', err));
  return issuer;
}

function b64url(buf) {
  return Buffer.from(buf).toString('base64url');
}

async function hostile() {
  const { generateKeyPair, exportJWK, SignJWT } = await import('jose');
  const good = await generateKeyPair('RS256', { extractable: true });
  const other = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(good.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  const nextJwk = { ...(await exportJWK(other.publicKey)), kid: 'k2', alg: 'RS256', use: 'sig' };
  let mode = 'valid';
  const codes = new Map();
  let issuer;
  const json = (res, status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const server = await listen(async (req, res) => {
    const url = new URL(req.url, issuer);
    let body = '';
    for await (const chunk of req) body += chunk;
    if (url.pathname === '/.well-known/openid-configuration') {
      return json(res, 200, {
        issuer,
        authorization_endpoint: `${issuer}/auth`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        userinfo_endpoint: `${issuer}/me`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        token_endpoint_auth_methods_supported: ['client_secret_basic'],
        code_challenge_methods_supported: ['S256'],
      });
    }
    // `rotated`: the provider moved to its next key (the relying party's copy of the JWKS is stale).
    if (url.pathname === '/jwks') return json(res, 200, { keys: [mode === 'rotated' ? nextJwk : jwk] });
    if (url.pathname === '/mode' && req.method === 'POST') {
      mode = JSON.parse(body).mode;
      return json(res, 200, { mode });
    }
    if (url.pathname === '/auth') {
      const code = crypto.randomBytes(16).toString('hex');
      codes.set(code, url.searchParams.get('nonce'));
      const to = new URL(url.searchParams.get('redirect_uri'));
      to.searchParams.set('code', code);
      to.searchParams.set('state', url.searchParams.get('state'));
      res.writeHead(302, { location: to.toString() });
      return res.end();
    }
    if (url.pathname === '/token' && req.method === 'POST') {
      const code = new URLSearchParams(body).get('code');
      const nonce = codes.get(code);
      const now = Math.floor(Date.now() / 1000);
      const claims = {
        iss: issuer, aud: CLIENT_ID, sub: 'eve', email: 'eve@corp.example', email_verified: true,
        name: 'Eve Intruder', nonce, iat: now, exp: now + 300,
      };
      let key = good.privateKey;
      if (mode === 'wrong_nonce') claims.nonce = 'not-the-nonce-you-sent';
      if (mode === 'no_nonce') delete claims.nonce;
      if (mode === 'wrong_iss') claims.iss = 'https://evil.example';
      if (mode === 'wrong_aud') claims.aud = 'someone-else';
      if (mode === 'expired') { claims.iat = now - 7200; claims.exp = now - 3600; }
      if (mode === 'unknown_key') key = other.privateKey;
      let kid = 'k1';
      if (mode === 'rotated') { key = other.privateKey; kid = 'k2'; }
      let idToken;
      if (mode === 'alg_none') {
        idToken = `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}.`;
      } else if (mode === 'hs256') {
        // Key confusion: an HMAC "signature" keyed with the public modulus.
        const h = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: 'k1' }));
        const p = b64url(JSON.stringify(claims));
        const mac = crypto.createHmac('sha256', jwk.n).update(`${h}.${p}`).digest('base64url');
        idToken = `${h}.${p}.${mac}`;
      } else {
        idToken = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid }).sign(key);
      }
      return json(res, 200, { access_token: crypto.randomBytes(16).toString('hex'), token_type: 'Bearer', expires_in: 300, id_token: idToken });
    }
    if (url.pathname === '/me') return json(res, 200, { sub: 'eve', email: 'eve@corp.example', email_verified: true });
    json(res, 404, { error: 'not_found' });
  });
  issuer = `http://127.0.0.1:${server.address().port}`;
  return issuer;
}

const issuer = kind === 'hostile' ? await hostile() : await real();
console.log(`ISSUER ${issuer}`);
