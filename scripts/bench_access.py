"""Access-check benchmarks (issues 5 and 18): /auth/verify with a bearer JWT and
with an API key, /oauth2/introspect, each vs bare GET /healthz at 64
connections, on the default configuration (what users run: every request
logged at info, here to a file) and, as a second labelled column, with
GATEHOUSE_LOG=warn; client-credentials grants/s per service-account algorithm
(RS256, ES256, EdDSA) vs raw RS256 signatures/s; memory with 100k API keys and
10k service accounts. Ratios from one run. Called by scripts/bench.sh."""
import base64, json, os, re, shutil, socket, statistics, subprocess, sys, tempfile, time, urllib.parse, urllib.request

BIN, BASE, RAW = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
KEYS, SAS = int(os.environ.get("BENCH_KEYS", "100000")), int(os.environ.get("BENCH_SAS", "10000"))
# The fixed rate for the p99 figures: about a fifth of what /healthz serves flat out here.
RATE = int(os.environ.get("BENCH_RATE", "20000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SECS = os.environ.get("BENCH_SECS", "4")
# The configurations measured: the default first (the main column), then the tuned one.
CONFIGS = (("default", {}), ("warn", {"GATEHOUSE_LOG": "warn"}))


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def start(data, port, env_extra, log):
    # The caller's own GATEHOUSE_LOG never leaks into the default column.
    env = {k: v for k, v in os.environ.items() if k != "GATEHOUSE_LOG"}
    env.update(GATEHOUSE_DATA=data, **env_extra)
    p = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}"], env=env,
                         stdout=subprocess.DEVNULL, stderr=open(log, "ab"))
    for _ in range(20000):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return p
        except Exception:
            time.sleep(0.001)
    raise SystemExit("server did not start")


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024


def wrk(url, headers=(), script=None):
    args = ["wrk", "-t2", "-c64", f"-d{SECS}s", "--latency", url]
    for h in headers:
        args += ["-H", h]
    if script:
        args += ["-s", script]
    out = subprocess.run(args, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        raise SystemExit(f"{url}: {non2xx.group(1)} failed responses:\n{out}")
    return rps, p99


def post_script(d, name, body, headers):
    path = os.path.join(d, name + ".lua")
    with open(path, "w") as f:
        f.write('wrk.method = "POST"\n')
        f.write(f"wrk.body = {json.dumps(body)}\n")
        for k, v in headers.items():
            f.write(f'wrk.headers["{k}"] = {json.dumps(v)}\n')
    return path


def grant(base, basic):
    req = urllib.request.Request(f"{base}/oauth2/token", b"grant_type=client_credentials",
                                 {"authorization": basic, "content-type": "application/x-www-form-urlencoded"})
    return json.loads(urllib.request.urlopen(req).read())["access_token"]


with tempfile.TemporaryDirectory() as d:
    data, port = os.path.join(d, "data"), free_port()
    logs = {name: os.path.join(d, f"{name}.log") for name, _ in CONFIGS}
    p = start(data, port, {}, logs["default"])
    time.sleep(0.5)
    empty_rss = rss_mib(p.pid)
    p.terminate(); p.wait()
    t = time.perf_counter()
    seeded = json.loads(subprocess.run([RAW, "seed", data, str(KEYS), str(SAS)], capture_output=True, text=True, check=True).stdout)
    seed_s = time.perf_counter() - t
    basic = "Basic " + base64.b64encode(f"{seeded['client_id']}:{seeded['client_secret']}".encode()).decode()
    key = seeded["key"]
    # One copy of the data per configuration, so both servers run side by side.
    servers = {}
    for name, env in CONFIGS:
        dd = data if name == "default" else shutil.copytree(data, os.path.join(d, f"data-{name}"))
        pt = free_port()
        servers[name] = (start(dd, pt, env, logs[name]), f"http://127.0.0.1:{pt}")
    proc, base = servers["default"]
    token = grant(base, basic)
    # Touch both paths once on each server so the in-memory view (10k service accounts) is built.
    for _, b in servers.values():
        for cred in (token, key):
            urllib.request.urlopen(urllib.request.Request(f"{b}/auth/verify?scope=read:agents",
                                                          headers={"authorization": f"Bearer {cred}"})).read()
    loaded_rss = rss_mib(proc.pid)
    introspect = post_script(d, "introspect", "token=" + urllib.parse.quote(token),
                             {"authorization": basic, "content-type": "application/x-www-form-urlencoded"})
    grant_lua = post_script(d, "grant", "grant_type=client_credentials",
                            {"authorization": basic, "content-type": "application/x-www-form-urlencoded"})
    figures = ("h", "jwt", "key", "intro")
    rounds = {(c, k): [] for c, _ in CONFIGS for k in figures}
    for _ in range(ROUNDS):
        for c, _ in CONFIGS:
            b = servers[c][1]
            rounds[c, "h"].append(wrk(f"{b}/healthz"))
            rounds[c, "jwt"].append(wrk(f"{b}/auth/verify?scope=read:agents", [f"Authorization: Bearer {token}"]))
            rounds[c, "key"].append(wrk(f"{b}/auth/verify?scope=read:agents", [f"Authorization: Bearer {key}"]))
            rounds[c, "intro"].append(wrk(f"{b}/oauth2/introspect", script=introspect))
    # p99 at a fixed rate, corrected for coordinated omission (oha): wrk above
    # runs flat out on the same two cores, so its p99 is the load generator's
    # scheduling as much as the server (/healthz itself shows it).
    fixed = {}
    if shutil.which("oha"):
        def oha(url, headers=(), method="GET", body=None):
            args = ["oha", "--no-tui", "-c", "64", "-q", str(RATE), "-z", f"{SECS}s", "--latency-correction",
                    "--output-format", "json", "-m", method, url]
            for h in headers:
                args += ["-H", h]
            if body is not None:
                args += ["-d", body, "-T", "application/x-www-form-urlencoded"]
            out = json.loads(subprocess.run(args, capture_output=True, text=True, check=True).stdout)
            codes = {k: v for k, v in out.get("statusCodeDistribution", {}).items() if k != "200"}
            if codes:
                raise SystemExit(f"{url}: failed responses at a fixed rate: {codes}")
            return out["latencyPercentiles"]["p50"] * 1000, out["latencyPercentiles"]["p99"] * 1000
        fixed["h"] = oha(f"{base}/healthz")
        fixed["jwt"] = oha(f"{base}/auth/verify?scope=read:agents", [f"Authorization: Bearer {token}"])
        fixed["key"] = oha(f"{base}/auth/verify?scope=read:agents", [f"Authorization: Bearer {key}"])
        fixed["intro"] = oha(f"{base}/oauth2/introspect", [f"Authorization: {basic}"], "POST",
                             "token=" + urllib.parse.quote(token))
    log_lines = sum(1 for _ in open(logs["default"], "rb"))
    log_bytes = os.path.getsize(logs["default"])
    for pr, _ in servers.values():
        pr.terminate(); pr.wait()
    # Client-credentials grants per service-account algorithm: the same data
    # restarted with each setting (the default configuration), interleaved rounds.
    algs = ("RS256", "ES256", "EdDSA")
    grants = {a: [] for a in algs}
    for _ in range(max(2, ROUNDS - 1)):
        for a in algs:
            pr = start(data, port, {"GATEHOUSE_TOKENS_SERVICE_ACCOUNT_ALGORITHM": a}, logs["default"])
            b = f"http://127.0.0.1:{port}"
            grant(b, basic)
            grants[a].append(wrk(f"{b}/oauth2/token", script=grant_lua))
            pr.terminate(); pr.wait()

med = lambda xs, i=0: statistics.median(x[i] for x in xs)
names = (("h", "GET /healthz (baseline)"), ("jwt", "/auth/verify, bearer JWT (client credentials)"),
         ("key", "/auth/verify, API key"), ("intro", "POST /oauth2/introspect (Basic client auth, JWT)"))
print(f"access checks, wrk -t2 -c64 {SECS}s, {ROUNDS} interleaved rounds, medians; each column its own server, "
      "side by side on the same data: 'default' = the default configuration (request log at info, to a file), "
      "'warn' = GATEHOUSE_LOG=warn")
print(f"  {'':50} {'default req/s':>14} {'x healthz':>9} {'p99 ms':>7} | {'warn req/s':>11} {'x healthz':>9} {'p99 ms':>7} | default/warn")
for k, name in names:
    row = []
    for c, _ in CONFIGS:
        r, h = med(rounds[c, k]), med(rounds[c, "h"])
        row.append(f"{r:>{14 if c == 'default' else 11}.0f} {r / h:>9.2f} {med(rounds[c, k], 1):>7.2f}")
    print(f"  {name:50} {row[0]} | {row[1]} | {med(rounds['default', k]) / med(rounds['warn', k]):.2f}")
for k, name in names[1:]:
    per = ", ".join(f"{a[0] / b[0]:.2f}" for a, b in zip(rounds["default", k], rounds["default", "h"]))
    print(f"  {name}: default per-round x healthz {per} (goal >= 0.8x)")
print(f"  the default run wrote {log_lines} log lines ({log_bytes / 1e6:.1f} MB) to its log file")
if fixed:
    print(f"p99 at a fixed {RATE} req/s, 64 connections (oha, coordinated-omission corrected), default configuration: "
          + "; ".join(f"{n} p50 {fixed[k][0]:.2f} / p99 {fixed[k][1]:.2f} ms" for k, n in
                      (("h", "/healthz"), ("jwt", "verify JWT"), ("key", "verify API key"), ("intro", "introspect")))
          + " (goal p99 < 2 ms)")
else:
    print("p99 at a fixed rate: skipped (oha not installed; scripts/bench.sh installs it)")
rs2 = BASE["rs256_signs_per_sec_2_threads"]
g = {a: med(grants[a]) for a in algs}
print(f"client-credentials grants/s (default configuration, {len(grants['RS256'])} interleaved rounds) by "
      f"tokens.service_account_algorithm: " + ", ".join(f"{a} {g[a]:.0f}" for a in algs)
      + f" -> ES256 {g['ES256'] / g['RS256']:.2f}x and EdDSA {g['EdDSA'] / g['RS256']:.2f}x RS256")
print(f"  RS256 grants vs raw RS256 signatures {rs2:.0f}/s on 2 threads -> {g['RS256'] / rs2:.2f}x (goal >= 0.8x); "
      f"raw single-thread signatures/s: RS256 {BASE['rs256_signs_per_sec']:.0f}, ES256 {BASE['es256_signs_per_sec']:.0f}, "
      f"Ed25519 {BASE['ed25519_signs_per_sec']:.0f}")
print(f"memory: RSS {loaded_rss:.1f} MiB with {KEYS} API keys and {SAS} service accounts loaded vs {empty_rss:.1f} MiB empty "
      f"(seeding took {seed_s:.0f} s)")
