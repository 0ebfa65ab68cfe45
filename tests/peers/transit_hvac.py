"""Drives Gatehouse's Transit engine with hvac, the Python Vault client, as a
team pointing its existing code at Gatehouse would. Usage:
transit_hvac.py URL TOKEN SECRET_PLAINTEXT. Prints `ok <step>` per step and
`all ok` at the end; any failed check raises (non-zero exit)."""

import base64
import sys

import hvac
from hvac.exceptions import Forbidden, InvalidPath, InvalidRequest

url, token, secret = sys.argv[1], sys.argv[2], sys.argv[3]
client = hvac.Client(url=url, token=token)
t = client.secrets.transit


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def unb64(s):
    return base64.b64decode(s)


def step(name):
    print("ok", name, flush=True)


def refused(exc, fn, *args, words=None, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc as e:
        if words is not None:
            assert words in str(e), (words, str(e))
        return e
    raise AssertionError(f"{fn.__name__} was not refused with {exc.__name__}")


# Keys: create (each type), read, list.
r = t.create_key("conversations")
assert r["data"]["type"] == "aes256-gcm96" and r["data"]["latest_version"] == 1, r
t.create_key("chacha", key_type="chacha20-poly1305")
t.create_key("xchacha", key_type="xchacha20-poly1305")
keys = t.list_keys()["data"]["keys"]
assert {"conversations", "chacha", "xchacha"} <= set(keys), keys
info = t.read_key("conversations")["data"]
assert info["name"] == "conversations" and "1" in info["keys"], info
assert info["exportable"] is False and info["deletion_allowed"] is False, info
refused(InvalidRequest, t.create_key, "bad", key_type="rsa-2048", words="unknown key type")
refused(InvalidRequest, t.create_key, "exp", exportable=True, words="exportable")
refused(InvalidPath, t.read_key, "nothing-here")
step("keys")

# Encrypt and decrypt with each key type; an empty plaintext is valid.
for name in ("conversations", "chacha", "xchacha"):
    ct = t.encrypt_data(name, b64(secret))["data"]["ciphertext"]
    assert ct.startswith("vault:v1:") and secret not in ct, ct
    assert unb64(t.decrypt_data(name, ct)["data"]["plaintext"]).decode() == secret
empty = t.encrypt_data("conversations", "")["data"]["ciphertext"]
assert t.decrypt_data("conversations", empty)["data"]["plaintext"] == ""
step("encrypt_decrypt")

# Associated data binds the ciphertext.
ad = t.encrypt_data("conversations", b64(secret), associated_data=b64("row-1"))["data"]["ciphertext"]
assert unb64(t.decrypt_data("conversations", ad, associated_data=b64("row-1"))["data"]["plaintext"]).decode() == secret
refused(InvalidRequest, t.decrypt_data, "conversations", ad, associated_data=b64("row-2"), words="authentication failed")
refused(InvalidRequest, t.encrypt_data, "conversations", "not base64!!", words="base64")
step("associated_data")

# Rotate, then rewrap an old ciphertext to the new version.
old = t.encrypt_data("conversations", b64(secret))["data"]["ciphertext"]
t.rotate_key("conversations")
assert t.read_key("conversations")["data"]["latest_version"] == 2
new = t.encrypt_data("conversations", b64(secret))["data"]
assert new["key_version"] == 2 and new["ciphertext"].startswith("vault:v2:"), new
assert unb64(t.decrypt_data("conversations", old)["data"]["plaintext"]).decode() == secret
rw = t.rewrap_data("conversations", old)["data"]
assert rw["ciphertext"].startswith("vault:v2:") and "plaintext" not in rw, rw
assert unb64(t.decrypt_data("conversations", rw["ciphertext"])["data"]["plaintext"]).decode() == secret
pinned = t.encrypt_data("conversations", b64("x"), key_version=1)["data"]
assert pinned["key_version"] == 1 and pinned["ciphertext"].startswith("vault:v1:"), pinned
step("rotate_rewrap")

# Raising min_decryption_version refuses the old ciphertext.
t.update_key_configuration("conversations", min_decryption_version=2)
refused(InvalidRequest, t.decrypt_data, "conversations", old, words="too old")
assert unb64(t.decrypt_data("conversations", rw["ciphertext"])["data"]["plaintext"]).decode() == secret
refused(InvalidRequest, t.update_key_configuration, "conversations", min_decryption_version=9, words="latest key version is 2")
step("min_decryption_version")

# A batch with one bad item: the others succeed, results in input order.
batch = [
    {"plaintext": b64("a"), "reference": "r1"},
    {"plaintext": "not base64!!", "reference": "r2"},
    {"plaintext": "", "reference": "r3"},
]
e = refused(InvalidRequest, t.encrypt_data, "conversations", batch_input=batch)
res = e.json["data"]["batch_results"]
assert [x.get("reference") for x in res] == ["r1", "r2", "r3"], res
assert "ciphertext" in res[0] and "error" in res[1] and "ciphertext" in res[2], res
assert "ciphertext" not in res[1], res
resp = client.adapter.post(
    "/v1/transit/encrypt/conversations",
    json={"batch_input": batch, "partial_failure_response_code": 207},
)
assert resp.status_code == 207, resp.status_code
res2 = resp.json()["data"]["batch_results"]
ok = t.encrypt_data("conversations", batch_input=[batch[0], batch[2]])["data"]["batch_results"]
assert all("ciphertext" in x for x in ok), ok
dec = [
    {"ciphertext": res[0]["ciphertext"]},
    {"ciphertext": "vault:v2:AAAA"},
    {"ciphertext": res2[2]["ciphertext"]},
    {"ciphertext": old},
]
e = refused(InvalidRequest, t.decrypt_data, "conversations", batch_input=dec)
out = e.json["data"]["batch_results"]
assert unb64(out[0]["plaintext"]) == b"a" and "error" in out[1], out
assert out[2]["plaintext"] == "" and "too old" in out[3]["error"], out
step("batch")

# Data keys: plaintext (128/256/512 bits) and wrapped.
for bits in (128, 256, 512):
    d = t.generate_data_key("conversations", key_type="plaintext", bits=bits)["data"]
    assert len(unb64(d["plaintext"])) == bits // 8, d
    back = unb64(t.decrypt_data("conversations", d["ciphertext"])["data"]["plaintext"]).decode()
    assert back == d["plaintext"]
w = t.generate_data_key("conversations", key_type="wrapped")["data"]
assert "plaintext" not in w and w["ciphertext"].startswith("vault:v2:"), w
# hvac checks bits itself; the server's own check, sent raw.
refused(InvalidRequest, client.adapter.post, "/v1/transit/datakey/plaintext/conversations", json={"bits": 100}, words="bits")
step("datakey")

# HMAC and verify (sha2-256 by default, sha2-512 by name).
h = t.generate_hmac("conversations", b64("message"))["data"]["hmac"]
assert h.startswith("vault:v2:"), h
assert t.verify_signed_data("conversations", b64("message"), hmac=h)["data"]["valid"] is True
assert t.verify_signed_data("conversations", b64("other"), hmac=h)["data"]["valid"] is False
h512 = t.generate_hmac("conversations", b64("message"), algorithm="sha2-512")["data"]["hmac"]
assert len(unb64(h512.split(":")[2])) == 64
assert t.verify_signed_data("conversations", b64("message"), hmac=h512, hash_algorithm="sha2-512")["data"]["valid"] is True
assert t.verify_signed_data("conversations", b64("message"), hmac=h512)["data"]["valid"] is False
step("hmac")

# Random bytes.
rb = t.generate_random_bytes(n_bytes=16)["data"]["random_bytes"]
assert len(unb64(rb)) == 16
hx = t.generate_random_bytes(n_bytes=8, output_format="hex")["data"]["random_bytes"]
assert len(bytes.fromhex(hx)) == 8
step("random")

# Derived keys with convergent encryption: same context and plaintext, same ciphertext.
t.create_key("derived", derived=True, convergent_encryption=True)
ctx = b64("tenant-42")
a = t.encrypt_data("derived", b64(secret), context=ctx)["data"]["ciphertext"]
b = t.encrypt_data("derived", b64(secret), context=ctx)["data"]["ciphertext"]
c = t.encrypt_data("derived", b64(secret), context=b64("tenant-43"))["data"]["ciphertext"]
assert a == b and a != c
refused(InvalidRequest, t.encrypt_data, "derived", b64(secret), words="context")
refused(InvalidRequest, t.decrypt_data, "derived", a, context=b64("tenant-43"))
assert unb64(t.decrypt_data("derived", a, context=ctx)["data"]["plaintext"]).decode() == secret
refused(InvalidRequest, client.adapter.post, "/v1/transit/keys/conv-only", json={"convergent_encryption": True}, words="derivation")
step("derived")

# Trim versions below the minimum.
t.update_key_configuration("conversations", min_encryption_version=2)
refused(InvalidRequest, t.encrypt_data, "conversations", b64("x"), key_version=1, words="minimum encryption")
t.trim_key("conversations", 2)
info = t.read_key("conversations")["data"]
assert info["min_available_version"] == 2 and "1" not in info["keys"] and "2" in info["keys"], info
step("trim")

# Delete only once allowed.
refused(InvalidRequest, t.delete_key, "chacha", words="deletion is not allowed")
t.update_key_configuration("chacha", deletion_allowed=True)
t.delete_key("chacha")
refused(InvalidPath, t.read_key, "chacha")
step("delete")

# A wrong token is refused.
bad = hvac.Client(url=url, token="ghk_" + "a" * 49).secrets.transit
refused(Forbidden, bad.encrypt_data, "conversations", b64("x"))
step("bad_token")
print("all ok", flush=True)
