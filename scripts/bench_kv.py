"""KV v2 read benchmark (issue 14): GET /v1/secret/data/:path with an API key
(a 1 KiB secret) vs bare GET /healthz, wrk at 64 connections, interleaved
rounds; the ratio is the figure. Also a write (a new version, one durable
commit each) vs /healthz. Under 40 s. Called by `scripts/bench.sh kv`.
usage: bench_kv.py GATEHOUSE_BINARY"""
import json, os, re, socket, statistics, subprocess, sys, tempfile, time, urllib.request

BIN = sys.argv[1]


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def call(base, method, path, token=None, body=None, header="authorization"):
    h = {"content-type": "application/json"}
    if token:
        h[header] = token if header != "authorization" else f"Bearer {token}"
    req = urllib.request.Request(base + path, json.dumps(body).encode() if body is not None else None, h, method=method)
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"null")


def wrk(url, headers=(), script=None, secs=4):
    args = ["wrk", "-t2", "-c64", f"-d{secs}s", "--latency", url]
    for h in headers:
        args += ["-H", h]
    if script:
        args += ["-s", script]
    out = subprocess.run(args, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if bad:
        raise SystemExit(f"{url}: {bad.group(1)} failed responses:\n{out}")
    return rps, p99


with tempfile.TemporaryDirectory() as d:
    port = free_port()
    pw = os.path.join(d, "pw")
    with open(pw, "w") as f:
        f.write("violet-harbour-lantern-42")
    env = dict(os.environ, GATEHOUSE_DATA=os.path.join(d, "data"), GATEHOUSE_LOG="warn",
               GATEHOUSE_BOOTSTRAP_ADMIN_EMAIL="owner@example.com",
               GATEHOUSE_BOOTSTRAP_ADMIN_PASSWORD_FILE=pw)
    p = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(20000):
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=1) as r:
                if r.status == 200:
                    break
        except Exception:
            time.sleep(0.001)
    try:
        owner = call(base, "POST", "/api/v1/auth/login", body={"email": "owner@example.com", "password": "violet-harbour-lantern-42"})["access_token"]
        ws = call(base, "POST", "/api/v1/workspaces", owner, {"name": "Bench"})["id"]
        app = call(base, "POST", "/api/v1/api-apps", owner, {"name": "bench", "workspace": ws, "scopes": ["secrets:read", "secrets:write"]})
        key = call(base, "POST", f"/api/v1/api-apps/{app['id']}/keys", owner, {"name": "bench"})["key"]
        call(base, "POST", "/v1/secret/data/bench/api", key, {"data": {"api_key": "x" * 1024}}, header="x-vault-token")
        write = os.path.join(d, "write.lua")
        with open(write, "w") as f:
            f.write('wrk.method = "POST"\n')
            f.write(f'wrk.body = {json.dumps(json.dumps({"data": {"api_key": "y" * 1024}}))}\n')
            f.write('wrk.headers["content-type"] = "application/json"\n')
            f.write(f'wrk.headers["x-vault-token"] = "{key}"\n')
        rounds = {"h": [], "read": [], "write": []}
        for _ in range(3):
            rounds["h"].append(wrk(f"{base}/healthz"))
            rounds["read"].append(wrk(f"{base}/v1/secret/data/bench/api", [f"X-Vault-Token: {key}"]))
        rounds["write"].append(wrk(f"{base}/v1/secret/data/bench/w", script=write, secs=3))
    finally:
        p.terminate(); p.wait()

med = lambda k, i: statistics.median(x[i] for x in rounds[k])
h = med("h", 0)
print(f"GET /healthz baseline: {h:.0f} req/s (p99 {med('h', 1):.2f} ms), 64 connections, 3 interleaved rounds")
print(f"KV v2 read (1 KiB secret, API key): {med('read', 0):.0f} req/s = {med('read', 0) / h:.2f}x /healthz (p99 {med('read', 1):.2f} ms)")
print(f"KV v2 write (new version, durable commit): {med('write', 0):.0f} req/s = {med('write', 0) / h:.3f}x /healthz (p99 {med('write', 1):.2f} ms)")
