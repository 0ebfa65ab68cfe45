"""A SAML 2.0 identity provider for the SSO tests: pysaml2's IdP (`saml2.server.Server`,
signing through Debian's xmlsec1) on a loopback port chosen by the OS.

    python saml_idp.py SP_METADATA_URL [KEY_DIR [ENTITY_ID]]

SP_METADATA_URL may be file:// (a hand-made SP, for the audience and recipient tests);
KEY_DIR keeps the signing key (idp.key, idp.crt; created if missing), so a second IdP
can sign with the first one's key under its entity ID. Prints `IDP <base url>` once it listens. Endpoints:
  GET  /metadata              the IdP's metadata (entity ID, SSO URL, signing certificate)
  GET  /sso/redirect          HTTP-Redirect AuthnRequest → a login form (any user name below)
  POST /sso/login             → an auto-submitting form POSTing the signed Response to the ACS
  GET  /initiate?user=U       IdP-initiated (unsolicited) sign-in, same auto-submitting form
  GET  /raw?user=U[&in_response_to=ID]   the base64 SAMLResponse only (for tampering tests)
  POST /mode                  JSON {"alg": "sha256"|"sha1", "sign": "both"|"assertion"|"response"}
The SP's metadata is read from SP_METADATA_URL at the first request that needs it.
With WANT_SIGNED_REQUESTS=1 in the environment, AuthnRequests must carry a valid
HTTP-Redirect signature by the certificate in the SP's metadata.
"""
import base64
import datetime
import html
import json
import os
import sys
import tempfile
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NameID
from saml2.server import Server
from saml2.authn_context import PASSWORD
import warnings
warnings.filterwarnings("ignore")
from saml2.xmldsig import SIG_RSA_SHA1, SIG_RSA_SHA256, DIGEST_SHA1, DIGEST_SHA256

USERS = {
    "alice": {"email": "alice@corp.example", "name": "Alice Anders", "groups": ["gh-admins", "staff"]},
    "bob": {"email": "bob@corp.example", "name": "Bob Berg", "groups": ["staff"]},
}

sp_metadata_url = sys.argv[1]
work = sys.argv[2] if len(sys.argv) > 2 else tempfile.mkdtemp(prefix="gh-idp-")
key, cert = os.path.join(work, "idp.key"), os.path.join(work, "idp.crt")
if not os.path.exists(key):
    # Valid from yesterday: the tests move Gatehouse's clock back and forth.
    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-idp")])
    now = datetime.datetime.now(datetime.timezone.utc)
    c = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(k.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=2))
         .sign(k, hashes.SHA256()))
    with open(key, "wb") as f:
        f.write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()))
    with open(cert, "wb") as f:
        f.write(c.public_bytes(serialization.Encoding.PEM))
server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
base = f"http://127.0.0.1:{server.server_address[1]}"
entity_id = sys.argv[3] if len(sys.argv) > 3 else f"{base}/metadata"
mode = {"alg": "sha256", "sign": "both"}
state = {"idp": None}


def config(sp_metadata):
    c = {
        "entityid": entity_id,
        "service": {"idp": {
            "endpoints": {"single_sign_on_service": [(f"{base}/sso/redirect", BINDING_HTTP_REDIRECT)]},
            "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
            "want_authn_requests_signed": os.environ.get("WANT_SIGNED_REQUESTS") == "1",
            "policy": {"default": {"lifetime": {"minutes": 5}, "attribute_restrictions": None,
                                   "name_form": "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"}},
        }},
        "key_file": key,
        "cert_file": cert,
        "xmlsec_binary": "/usr/bin/xmlsec1",
        "metadata": {"inline": [sp_metadata]} if sp_metadata else {},
    }
    cfg = IdPConfig()
    cfg.load(c)
    return cfg


def idp():
    if state["idp"] is None:
        with urllib.request.urlopen(sp_metadata_url) as r:
            state["idp"] = Server(config=config(r.read().decode()))
    return state["idp"]


def response(user, in_response_to, destination, sp_entity_id):
    u = USERS[user]
    alg = mode["alg"]
    r = idp().create_authn_response(
        identity={"email": [u["email"]], "displayName": [u["name"]], "groups": u["groups"]},
        in_response_to=in_response_to,
        destination=destination,
        sp_entity_id=sp_entity_id,
        userid=user,
        name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=u["email"]),
        authn={"class_ref": PASSWORD, "authn_auth": entity_id},
        sign_response=mode["sign"] in ("both", "response"),
        sign_assertion=mode["sign"] in ("both", "assertion"),
        sign_alg=SIG_RSA_SHA1 if alg == "sha1" else SIG_RSA_SHA256,
        digest_alg=DIGEST_SHA1 if alg == "sha1" else DIGEST_SHA256,
    )
    return base64.b64encode(str(r).encode()).decode()


def sp():
    srv = idp()
    entity = next(iter(srv.metadata.service_providers()))
    acs = srv.metadata.assertion_consumer_service(entity, BINDING_HTTP_POST)[0]["location"]
    return entity, acs


def post_form(acs, saml_response, relay_state):
    fields = f'<input type="hidden" name="SAMLResponse" value="{html.escape(saml_response)}">'
    if relay_state:
        fields += f'<input type="hidden" name="RelayState" value="{html.escape(relay_state)}">'
    return (f'<!doctype html><html><body onload="document.forms[0].submit()">'
            f'<form method="post" action="{html.escape(acs)}">{fields}'
            f'<button type="submit">Continue</button></form></body></html>')


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body, ctype="text/html; charset=utf-8"):
        data = body.encode()
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        try:
            if url.path == "/metadata":
                return self.reply(200, create_metadata_string(None, config=config(None)).decode(),
                                  "application/samlmetadata+xml")
            if url.path == "/sso/redirect":
                req = idp().parse_authn_request(q["SAMLRequest"], BINDING_HTTP_REDIRECT,
                                                relay_state=q.get("RelayState"), sigalg=q.get("SigAlg"),
                                                signature=q.get("Signature"))
                if req is None:
                    return self.reply(400, "idp error: the AuthnRequest was refused", "text/plain")
                return self.reply(200, (
                    '<!doctype html><html><body><h1>Test IdP</h1>'
                    '<form method="post" action="/sso/login">'
                    f'<input type="hidden" name="SAMLRequest" value="{html.escape(q["SAMLRequest"])}">'
                    f'<input type="hidden" name="RelayState" value="{html.escape(q.get("RelayState", ""))}">'
                    f'<input type="hidden" name="SigAlg" value="{html.escape(q.get("SigAlg", ""))}">'
                    f'<input type="hidden" name="Signature" value="{html.escape(q.get("Signature", ""))}">'
                    f'<label>User <input name="user" value=""></label> <span>request {html.escape(req.message.id)}</span>'
                    '<button type="submit">Sign in</button></form></body></html>'))
            if url.path == "/initiate":
                entity, acs = sp()
                return self.reply(200, post_form(acs, response(q["user"], None, acs, entity), q.get("RelayState")))
            if url.path == "/raw":
                entity, acs = sp()
                return self.reply(200, response(q["user"], q.get("in_response_to"), acs, entity), "text/plain")
            self.reply(404, "not found")
        except Exception as e:  # the test reads the reason
            self.reply(500, f"idp error: {e!r}", "text/plain")

    def do_POST(self):
        url = urllib.parse.urlparse(self.path)
        body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
        try:
            if url.path == "/mode":
                mode.update(json.loads(body))
                return self.reply(200, json.dumps(mode), "application/json")
            if url.path == "/sso/login":
                f = dict(urllib.parse.parse_qsl(body))
                req = idp().parse_authn_request(f["SAMLRequest"], BINDING_HTTP_REDIRECT,
                                                relay_state=f.get("RelayState") or None,
                                                sigalg=f.get("SigAlg") or None,
                                                signature=f.get("Signature") or None).message
                args = idp().response_args(req, [BINDING_HTTP_POST])
                saml = response(f["user"], req.id, args["destination"], args["sp_entity_id"])
                return self.reply(200, post_form(args["destination"], saml, f.get("RelayState")))
            self.reply(404, "not found")
        except Exception as e:
            self.reply(500, f"idp error: {e!r}", "text/plain")


server.RequestHandlerClass = Handler
print(f"IDP {base}", flush=True)
server.serve_forever()
