// Verifies an access token the way a resource server using `jose` would:
// keys from the JWKS URL, the algorithm taken from the key. Prints
// {"ok": true, "alg", "kid", "sub"} or {"ok": false, "error"}.
// Usage: node verify_jwt.mjs JWKS_URL ISSUER AUDIENCE TOKEN NOW (the server's clock, epoch seconds)
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [jwksUrl, issuer, audience, token, now] = process.argv.slice(2);
const jwks = createRemoteJWKSet(new URL(jwksUrl));
try {
  const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer, audience, currentDate: new Date(Number(now) * 1000) });
  console.log(JSON.stringify({ ok: true, alg: protectedHeader.alg, kid: protectedHeader.kid, sub: payload.sub }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: `${e.code || e.name}: ${e.message}` }));
}
