// A WS-Federation identity provider for the SSO tests: Auth0's npm `wsfed`
// middleware (an RSTR carrying a SAML 1.1 assertion signed rsa-sha256), or
// an RSTR around a SAML 2.0 assertion from npm `saml` (`Saml20.create`), on a
// loopback port chosen by the OS.
//
//   node wsfed_idp.mjs
//
// Prints `WSFED <base url>` once it listens. Endpoints:
//   GET  /FederationMetadata/2007-06/FederationMetadata.xml   federation metadata
//   GET  /wsfed?wa=wsignin1.0&wtrealm&wreply&wctx   a login form (a user name below)
//   POST /wsfed/login                               → auto-submitting form POSTing wa, wresult, wctx to wreply
//   GET  /raw?user=U&wtrealm=R&wreply=W&wctx=C      the wresult only (for tampering tests)
//   POST /mode                                      JSON {"token": "saml11"|"saml20"}
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import wsfed from 'wsfed';
import saml from 'saml';

const USERS = {
  alice: { id: 'alice', displayName: 'Alice Anders', emails: [{ value: 'alice@corp.example' }], groups: ['gh-admins'] },
  bob: { id: 'bob', displayName: 'Bob Berg', emails: [{ value: 'bob@corp.example' }], groups: ['staff'] },
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gh-wsfed-'));
execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=test-wsfed',
  '-keyout', path.join(dir, 'k.pem'), '-out', path.join(dir, 'c.pem')], { stdio: 'ignore' });
const key = fs.readFileSync(path.join(dir, 'k.pem'));
const cert = fs.readFileSync(path.join(dir, 'c.pem'));
const mode = { token: 'saml11' };

const app = express();
const server = app.listen(0, '127.0.0.1', () => {
  console.log(`WSFED http://127.0.0.1:${server.address().port}`);
});
const base = () => `http://127.0.0.1:${server.address().port}`;
const issuer = () => `${base()}/wsfed`;
const esc = (s) => String(s ?? '').replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

// The RSTR for `user`, in the token format of the current mode.
function wresult(user, q) {
  return new Promise((resolve, reject) => {
    if (mode.token === 'saml20') {
      const u = USERS[user];
      const assertion = saml.Saml20.create({
        cert, key, issuer: issuer(), lifetimeInSeconds: 300,
        audiences: q.wtrealm, recipient: q.wreply,
        nameIdentifier: u.emails[0].value,
        nameIdentifierFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
        attributes: {
          'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress': u.emails[0].value,
          'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name': u.displayName,
          'http://schemas.xmlsoap.org/claims/Group': u.groups,
        },
        signatureAlgorithm: 'rsa-sha256', digestAlgorithm: 'sha256',
      });
      return resolve(`<t:RequestSecurityTokenResponse Context="${esc(q.wctx)}" xmlns:t="http://schemas.xmlsoap.org/ws/2005/02/trust"><t:RequestedSecurityToken>${assertion}</t:RequestedSecurityToken></t:RequestSecurityTokenResponse>`);
    }
    const req = { query: q, user: USERS[user], headers: {}, get: () => '' };
    const res = { set() {}, send: (html) => resolve(html) };
    wsfed.auth({
      issuer: issuer(), cert, key, lifetimeInSeconds: 300,
      signatureAlgorithm: 'rsa-sha256', digestAlgorithm: 'sha256',
      getPostURL: (wtrealm, wreply, r, cb) => cb(null, wreply),
      responseHandler: (r, postUrl, ctx, result) => resolve(result),
    })(req, res, reject);
  });
}

function autoPost(to, result, wctx) {
  return `<!doctype html><html><body onload="document.forms[0].submit()"><form method="post" action="${esc(to)}">`
    + `<input type="hidden" name="wa" value="wsignin1.0"><input type="hidden" name="wresult" value="${esc(result)}">`
    + `<input type="hidden" name="wctx" value="${esc(wctx)}"><button type="submit">Continue</button></form></body></html>`;
}

app.get('/FederationMetadata/2007-06/FederationMetadata.xml', (req, res, next) =>
  wsfed.metadata({ issuer: issuer(), cert, endpointPath: '/wsfed' })(req, res, next));
app.get('/wsfed', (req, res) => {
  if (req.query.wa !== 'wsignin1.0') return res.status(400).send('wa must be wsignin1.0');
  res.send(`<!doctype html><html><body><h1>Test WS-Fed IdP</h1><form method="post" action="/wsfed/login">`
    + ['wtrealm', 'wreply', 'wctx'].map((k) => `<input type="hidden" name="${k}" value="${esc(req.query[k])}">`).join('')
    + `<label>User <input name="user" value=""></label><button type="submit">Sign in</button></form></body></html>`);
});
app.post('/wsfed/login', express.urlencoded({ extended: false }), async (req, res) => {
  try {
    const result = await wresult(req.body.user, req.body);
    res.send(autoPost(req.body.wreply, result, req.body.wctx));
  } catch (e) { res.status(500).send(String(e)); }
});
app.get('/raw', async (req, res) => {
  try { res.type('text/plain').send(await wresult(req.query.user, req.query)); } catch (e) { res.status(500).send(String(e)); }
});
app.post('/mode', express.json(), (req, res) => { Object.assign(mode, req.body); res.json(mode); });
