"""Drives Gatehouse's KV v2 store with hvac, the real Vault client.

usage: kv_hvac.py full BASE TOKEN SECRET    the whole life of a secret
       kv_hvac.py narrow BASE TOKEN         a key narrowed to secrets:read:webhooks/

Every step asserts what Vault's documented behaviour says; a failed step
exits non-zero with the traceback. Prints OK at the end.
"""

import sys
import warnings

import hvac
from hvac import exceptions

warnings.simplefilter("ignore", DeprecationWarning)


def raises(exc, f, *a, **kw):
    try:
        f(*a, **kw)
    except exc as e:
        return e
    raise AssertionError(f"{f.__name__} did not raise {exc.__name__}")


def full(base, token, secret):
    c = hvac.Client(url=base, token=token)
    kv = c.secrets.kv.v2

    # Engine config: defaults first, then set and read back.
    cfg = kv.read_configuration()["data"]
    assert cfg == {"cas_required": False, "delete_version_after": "0s", "max_versions": 0}, cfg

    # Write and read.
    w = kv.create_or_update_secret("webhooks/stripe", {"signing_secret": secret})
    assert w["data"]["version"] == 1, w
    assert w["data"]["deletion_time"] == "" and w["data"]["destroyed"] is False, w
    r = kv.read_secret_version("webhooks/stripe", raise_on_deleted_version=True)
    assert r["data"]["data"] == {"signing_secret": secret}, r
    assert r["data"]["metadata"]["version"] == 1, r
    assert r["data"]["metadata"]["custom_metadata"] is None, r

    # Versions and check-and-set.
    w2 = kv.create_or_update_secret("webhooks/stripe", {"signing_secret": secret + "-2"}, cas=1)
    assert w2["data"]["version"] == 2, w2
    e = raises(exceptions.InvalidRequest, kv.create_or_update_secret,
               "webhooks/stripe", {"signing_secret": "lost"}, cas=1)
    assert "check-and-set parameter did not match the current version" in str(e), e
    e = raises(exceptions.InvalidRequest, kv.create_or_update_secret,
               "webhooks/stripe", {"x": "y"}, cas=0)
    assert "check-and-set" in str(e), e
    old = kv.read_secret_version("webhooks/stripe", version=1, raise_on_deleted_version=True)
    assert old["data"]["data"]["signing_secret"] == secret, old
    cur = kv.read_secret_version("webhooks/stripe", raise_on_deleted_version=True)
    assert cur["data"]["data"]["signing_secret"] == secret + "-2", cur

    # Soft delete of the latest version: a 404 that still carries its metadata.
    kv.delete_latest_version_of_secret("webhooks/stripe")
    raises(exceptions.InvalidPath, kv.read_secret_version, "webhooks/stripe",
           raise_on_deleted_version=True)
    gone = kv.read_secret_version("webhooks/stripe", raise_on_deleted_version=False)
    assert gone["data"]["data"] is None, gone
    assert gone["data"]["metadata"]["deletion_time"] != "", gone
    assert gone["data"]["metadata"]["version"] == 2, gone

    # Undelete brings it back; delete by version and undelete again.
    kv.undelete_secret_versions("webhooks/stripe", versions=[2])
    back = kv.read_secret_version("webhooks/stripe", raise_on_deleted_version=True)
    assert back["data"]["data"]["signing_secret"] == secret + "-2", back
    kv.delete_secret_versions("webhooks/stripe", versions=[1])
    raises(exceptions.InvalidPath, kv.read_secret_version, "webhooks/stripe", version=1,
           raise_on_deleted_version=True)

    # Destroy is for good: undelete cannot bring it back.
    kv.destroy_secret_versions("webhooks/stripe", versions=[1])
    kv.undelete_secret_versions("webhooks/stripe", versions=[1])
    raises(exceptions.InvalidPath, kv.read_secret_version, "webhooks/stripe", version=1,
           raise_on_deleted_version=True)

    # Metadata.
    m = kv.read_secret_metadata("webhooks/stripe")["data"]
    assert m["current_version"] == 2 and m["oldest_version"] == 0, m
    assert m["versions"]["1"]["destroyed"] is True, m
    assert m["versions"]["2"]["destroyed"] is False and m["versions"]["2"]["deletion_time"] == "", m
    assert m["max_versions"] == 0 and m["cas_required"] is False, m
    assert m["delete_version_after"] == "0s", m
    kv.update_metadata("webhooks/stripe", max_versions=3, custom_metadata={"owner": "payments"})
    m = kv.read_secret_metadata("webhooks/stripe")["data"]
    assert m["max_versions"] == 3 and m["custom_metadata"] == {"owner": "payments"}, m
    r = kv.read_secret_version("webhooks/stripe", raise_on_deleted_version=True)
    assert r["data"]["metadata"]["custom_metadata"] == {"owner": "payments"}, r

    # max_versions: the oldest versions go once there are more than 10
    # (Vault keeps the larger of the key's and the engine's setting).
    for i in range(12):
        kv.create_or_update_secret("rotating", {"n": i})
    m = kv.read_secret_metadata("rotating")["data"]
    assert m["current_version"] == 12 and m["oldest_version"] == 3, m
    assert sorted(int(v) for v in m["versions"]) == list(range(3, 13)), m
    raises(exceptions.InvalidPath, kv.read_secret_version, "rotating", version=2,
           raise_on_deleted_version=True)

    # cas_required on the key: a write without cas is refused.
    kv.update_metadata("rotating", cas_required=True)
    e = raises(exceptions.InvalidRequest, kv.create_or_update_secret, "rotating", {"n": "x"})
    assert "check-and-set parameter required" in str(e), e
    assert kv.create_or_update_secret("rotating", {"n": "x"}, cas=12)["data"]["version"] == 13

    # hvac's patch: read, merge, write with cas.
    p = kv.patch("webhooks/stripe", {"note": "rotated"})
    assert p["data"]["version"] == 3, p
    r = kv.read_secret_version("webhooks/stripe", raise_on_deleted_version=True)
    assert r["data"]["data"] == {"signing_secret": secret + "-2", "note": "rotated"}, r

    # Listing: folders end with /.
    kv.create_or_update_secret("webhooks/github/app", {"k": "v"})
    top = kv.list_secrets("")["data"]["keys"]
    assert top == ["rotating", "webhooks/"], top
    inner = kv.list_secrets("webhooks")["data"]["keys"]
    assert inner == ["github/", "stripe"], inner
    raises(exceptions.InvalidPath, kv.list_secrets, "nothing-here")

    # The engine config.
    kv.configure(max_versions=4, cas_required=False, delete_version_after="1h")
    cfg = kv.read_configuration()["data"]
    assert cfg == {"cas_required": False, "delete_version_after": "1h0m0s", "max_versions": 4}, cfg
    w = kv.create_or_update_secret("expiring", {"k": "v"})
    assert w["data"]["deletion_time"] != "", w
    kv.configure(max_versions=0, delete_version_after="0s")

    # Metadata delete removes every version.
    kv.delete_metadata_and_all_versions("webhooks/github/app")
    raises(exceptions.InvalidPath, kv.read_secret_metadata, "webhooks/github/app")
    raises(exceptions.InvalidPath, kv.read_secret_version, "webhooks/github/app",
           raise_on_deleted_version=True)
    print("OK")


def narrow(base, token):
    c = hvac.Client(url=base, token=token)
    kv = c.secrets.kv.v2
    r = kv.read_secret_version("webhooks/stripe", raise_on_deleted_version=True)
    assert "signing_secret" in r["data"]["data"], r
    assert kv.list_secrets("webhooks")["data"]["keys"], "listing inside the prefix works"
    raises(exceptions.Forbidden, kv.read_secret_version, "rotating", raise_on_deleted_version=True)
    raises(exceptions.Forbidden, kv.read_secret_version, "webhooks-old/x",
           raise_on_deleted_version=True)
    raises(exceptions.Forbidden, kv.list_secrets, "")
    raises(exceptions.Forbidden, kv.read_secret_metadata, "rotating")
    raises(exceptions.Forbidden, kv.create_or_update_secret, "webhooks/stripe", {"k": "v"})
    print("OK")


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "full":
        full(sys.argv[2], sys.argv[3], sys.argv[4])
    elif mode == "narrow":
        narrow(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown mode {mode}")
