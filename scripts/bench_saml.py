"""SAML ACS verification throughput against raw RSA-2048 verification, in one
run: pysaml2's IdP (the test venv) signs real responses for a hand-made SP,
then `raw saml` verifies them in alternating rounds. Usage: bench_saml.py RAW"""
import json
import os
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request

raw = sys.argv[1]
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
work = tempfile.mkdtemp(prefix="gh-bench-saml-")
sp = os.path.join(work, "sp.xml")
with open(sp, "w") as f:
    f.write('<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://sp.example/metadata">'
            '<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
            '<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
            'Location="https://sp.example/acs" index="0"/></md:SPSSODescriptor></md:EntityDescriptor>')
idp = subprocess.Popen([os.path.join(root, ".venv/bin/python"), os.path.join(root, "tests/peers/saml_idp.py"),
                        f"file://{sp}", work], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
try:
    base = idp.stdout.readline().split()[1]
    results = {}
    for sign in ["assertion", "both"]:
        req = urllib.request.Request(f"{base}/mode", data=json.dumps({"sign": sign}).encode(),
                                     headers={"content-type": "application/json"})
        urllib.request.urlopen(req).read()
        import base64
        xml = base64.b64decode(urllib.request.urlopen(f"{base}/raw?user=alice").read()).decode()
        path = os.path.join(work, f"{sign}.xml")
        with open(path, "w") as f:
            f.write(xml)
        out = subprocess.run([raw, "saml", path, os.path.join(work, "idp.crt"), "4"],
                             check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        results[f"signed_{sign}"] = json.loads(out)
    # The XML budget (issue 11): real documents' shapes (pysaml2, npm wsfed
    # and saml) and the cost of documents at the limits vs a signed response.
    others = []
    with open(os.path.join(work, "pysaml2_metadata.xml"), "w") as f:
        f.write(urllib.request.urlopen(f"{base}/metadata").read().decode())
    others.append(os.path.join(work, "pysaml2_metadata.xml"))
    ws = subprocess.Popen(["node", "wsfed_idp.mjs"], cwd=os.path.join(root, "tests/peers"),
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        wbase = ws.stdout.readline().split()[1]
        q = urllib.parse.urlencode({"user": "alice", "wtrealm": "https://sp.example/wsfed",
                                    "wreply": "https://sp.example/cb", "wctx": "c"})
        for tok in ["saml11", "saml20"]:
            req = urllib.request.Request(f"{wbase}/mode", data=json.dumps({"token": tok}).encode(),
                                         headers={"content-type": "application/json"})
            urllib.request.urlopen(req).read()
            p = os.path.join(work, f"wsfed_{tok}.xml")
            with open(p, "w") as f:
                f.write(urllib.request.urlopen(f"{wbase}/raw?{q}").read().decode())
            others.append(p)
        p = os.path.join(work, "wsfed_metadata.xml")
        with open(p, "w") as f:
            f.write(urllib.request.urlopen(f"{wbase}/FederationMetadata/2007-06/FederationMetadata.xml").read().decode())
        others.append(p)
    finally:
        ws.kill()
    out = subprocess.run([raw, "xmlbudget", os.path.join(work, "both.xml"), os.path.join(work, "idp.crt"),
                          os.path.join(work, "assertion.xml")] + others,
                         check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    results["xml_budget"] = json.loads(out)
    print(json.dumps(results, indent=2))
finally:
    idp.kill()
