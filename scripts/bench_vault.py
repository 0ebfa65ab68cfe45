"""Encryption-service benchmarks (issue 14), ratios from one run: Transit
encrypt and decrypt of 1 KiB and 64 KiB through the HTTP API (wrk, 64
connections) against GET /healthz and against raw XChaCha20-Poly1305
in-process (`raw xchacha`), and one batch of 1,000 items against 1,000
single calls (one keep-alive connection each). Usage:
bench_vault.py GATEHOUSE_BINARY RAW_BENCH_BINARY. Called by scripts/bench.sh vault;
about 40 s of wall time."""
import base64, json, os, re, socket, statistics, subprocess, sys, tempfile, time, http.client, urllib.request

BIN, RAW = sys.argv[1], sys.argv[2]
DUR = os.environ.get("BENCH_DURATION", "3s")


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def call(conn, method, path, body=None, token=None):
    h = {"content-type": "application/json"}
    if token:
        h["x-vault-token"] = token
    conn.request(method, path, json.dumps(body) if body is not None else None, h)
    r = conn.getresponse()
    data = r.read()
    if r.status >= 300:
        raise SystemExit(f"{method} {path}: {r.status} {data[:300]!r}")
    return json.loads(data) if data else None


def wrk(url, script=None):
    args = ["wrk", "-t2", "-c64", f"-d{DUR}", url]
    if script:
        args += ["-s", script]
    out = subprocess.run(args, capture_output=True, text=True).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        raise SystemExit(f"{url}: {non2xx.group(1)} failed responses:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def post_script(d, name, body, token):
    path = os.path.join(d, name + ".lua")
    with open(path, "w") as f:
        f.write('wrk.method = "POST"\n')
        f.write(f"wrk.body = {json.dumps(json.dumps(body))}\n")
        f.write('wrk.headers["Content-Type"] = "application/json"\n')
        f.write(f'wrk.headers["X-Vault-Token"] = "{token}"\n')
    return path


raw = json.loads(subprocess.run([RAW, "xchacha"], capture_output=True, text=True, check=True).stdout)
with tempfile.TemporaryDirectory() as d:
    pw = os.path.join(d, "pw")
    with open(pw, "w") as f:
        f.write("violet-harbour-lantern-42")
    port = free_port()
    env = dict(os.environ, GATEHOUSE_DATA=os.path.join(d, "data"), GATEHOUSE_LOG="warn",
               GATEHOUSE_BOOTSTRAP_ADMIN_EMAIL="owner@example.com",
               GATEHOUSE_BOOTSTRAP_ADMIN_PASSWORD_FILE=pw)
    p = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(20000):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        break
            except Exception:
                time.sleep(0.001)
        base = f"http://127.0.0.1:{port}"
        c = http.client.HTTPConnection("127.0.0.1", port)
        tok = call(c, "POST", "/api/v1/auth/login", {"email": "owner@example.com", "password": "violet-harbour-lantern-42"})["access_token"]

        def api(path, body):
            c.request("POST", path, json.dumps(body), {"content-type": "application/json", "authorization": f"Bearer {tok}"})
            r = c.getresponse(); data = json.loads(r.read())
            if r.status >= 300:
                raise SystemExit(f"{path}: {r.status} {data}")
            return data
        ws = api("/api/v1/workspaces", {"name": "bench"})["id"]
        app = api("/api/v1/api-apps", {"workspace": ws, "name": "bench", "scopes": ["transit:encrypt", "transit:decrypt", "transit:manage"]})
        key = api(f"/api/v1/api-apps/{app['id']}/keys", {"name": "k"})["key"]
        call(c, "POST", "/v1/transit/keys/bench", {"type": "xchacha20-poly1305"}, key)
        scripts, rounds = {}, {}
        for size, label in ((1024, "1k"), (65536, "64k")):
            pt = base64.b64encode(os.urandom(size)).decode()
            ct = call(c, "POST", "/v1/transit/encrypt/bench", {"plaintext": pt}, key)["data"]["ciphertext"]
            scripts["enc" + label] = post_script(d, "enc" + label, {"plaintext": pt}, key)
            scripts["dec" + label] = post_script(d, "dec" + label, {"ciphertext": ct}, key)
        rounds = {k: [] for k in ["h", *scripts]}
        for _ in range(2):
            rounds["h"].append(wrk(f"{base}/healthz"))
            for k, s in scripts.items():
                rounds[k].append(wrk(f"{base}/v1/transit/{'encrypt' if k.startswith('enc') else 'decrypt'}/bench", s))
        # 1,000 items: one batch against 1,000 single calls, each over one keep-alive connection.
        items = [{"plaintext": base64.b64encode(os.urandom(64)).decode()} for _ in range(1000)]
        batch_t, single_t = [], []
        for _ in range(3):
            t = time.perf_counter()
            call(c, "POST", "/v1/transit/encrypt/bench", {"batch_input": items}, key)
            batch_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            for it in items:
                call(c, "POST", "/v1/transit/encrypt/bench", it, key)
            single_t.append(time.perf_counter() - t)
    finally:
        p.terminate(); p.wait()

med = lambda k: statistics.median(rounds[k])
h = med("h")
print(f"GET /healthz baseline: {h:.0f} req/s (64 connections, 2 interleaved rounds of {DUR})")
for k, name, raw_key in (("enc1k", "encrypt 1 KiB", "encrypt_1k_per_sec"), ("dec1k", "decrypt 1 KiB", "decrypt_1k_per_sec"),
                         ("enc64k", "encrypt 64 KiB", "encrypt_64k_per_sec"), ("dec64k", "decrypt 64 KiB", "decrypt_64k_per_sec")):
    goal = " (goal >= 0.7x)" if k == "enc1k" else ""
    print(f"Transit {name} (xchacha20-poly1305): {med(k):.0f} req/s -> {med(k) / h:.2f}x healthz{goal}; "
          f"raw XChaCha20-Poly1305 in-process {raw[raw_key]:.0f}/s on one thread -> HTTP is {med(k) / raw[raw_key]:.3f}x raw")
b, s = statistics.median(batch_t), statistics.median(single_t)
print(f"1,000 encrypts: one batch {b * 1000:.1f} ms vs 1,000 single calls {s * 1000:.0f} ms on one connection -> batch {s / b:.1f}x faster")
