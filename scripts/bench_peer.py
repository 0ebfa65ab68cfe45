"""Side by side with node oidc-provider (tests/peers/bench_op.mjs, issue 18
point 5): client-credentials grants (Gatehouse RS256 and EdDSA tokens;
oidc-provider opaque and JWT tokens), introspection, JWKS, RSS after the
load, and start time — flat-out throughput (wrk -t2 -c64) and, with oha, p99
at a fixed rate — each as a ratio from one run. Both run with their default
logging. Called by `scripts/bench.sh peer`."""
import base64, json, os, re, shutil, socket, statistics, subprocess, sys, tempfile, time, urllib.parse, urllib.request

BIN, RAW = sys.argv[1], sys.argv[2]
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
SECS = os.environ.get("BENCH_SECS", "4")
RATE = int(os.environ.get("BENCH_PEER_RATE", "1000"))
PEER_SECRET = "bench-peer-secret-0123456789abcdef"


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024


def wait_ok(url):
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except Exception:
            time.sleep(0.0005)


def start_gh(data, port, env_extra, log):
    env = {k: v for k, v in os.environ.items() if k != "GATEHOUSE_LOG"}
    env.update(GATEHOUSE_DATA=data, **env_extra)
    t0 = time.perf_counter()
    p = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}"], env=env,
                         stdout=subprocess.DEVNULL, stderr=open(log, "ab"))
    wait_ok(f"http://127.0.0.1:{port}/readyz")
    return p, (time.perf_counter() - t0) * 1000


def start_peer():
    t0 = time.perf_counter()
    p = subprocess.Popen(["node", "bench_op.mjs", PEER_SECRET], cwd=os.path.join(ROOT, "tests/peers"),
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    issuer = line.split()[1]
    wait_ok(f"{issuer}/jwks")
    return p, issuer, (time.perf_counter() - t0) * 1000


def wrk(url, script=None):
    args = ["wrk", "-t2", "-c64", f"-d{SECS}s", "--latency", url]
    if script:
        args += ["-s", script]
    out = subprocess.run(args, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        raise SystemExit(f"{url}: {non2xx.group(1)} failed responses:\n{out}")
    return rps


def oha_p99(url, basic=None, body=None):
    args = ["oha", "--no-tui", "-c", "16", "-q", str(RATE), "-z", f"{SECS}s", "--latency-correction",
            "--output-format", "json", url]
    if body is not None:
        args += ["-m", "POST", "-d", body, "-T", "application/x-www-form-urlencoded", "-H", f"Authorization: {basic}"]
    out = json.loads(subprocess.run(args, capture_output=True, text=True, check=True).stdout)
    return out["latencyPercentiles"]["p99"] * 1000


def post_script(d, name, body, basic):
    path = os.path.join(d, name + ".lua")
    with open(path, "w") as f:
        f.write('wrk.method = "POST"\n')
        f.write(f"wrk.body = {json.dumps(body)}\n")
        f.write(f'wrk.headers["authorization"] = {json.dumps(basic)}\n')
        f.write('wrk.headers["content-type"] = "application/x-www-form-urlencoded"\n')
    return path


def token(url, basic, body):
    req = urllib.request.Request(url, body.encode(), {"authorization": basic, "content-type": "application/x-www-form-urlencoded"})
    return json.loads(urllib.request.urlopen(req).read())["access_token"]


with tempfile.TemporaryDirectory() as d:
    log = os.path.join(d, "gatehouse.log")
    data = os.path.join(d, "data")
    port = free_port()
    p, _ = start_gh(data, port, {}, log)
    p.terminate(); p.wait()
    seeded = json.loads(subprocess.run([RAW, "seed", data, "1", "1"], capture_output=True, text=True, check=True).stdout)
    gh_basic = "Basic " + base64.b64encode(f"{seeded['client_id']}:{seeded['client_secret']}".encode()).decode()
    data_ed = shutil.copytree(data, os.path.join(d, "data-eddsa"))
    port_ed = free_port()
    starts = {"gh": [], "peer": []}
    for _ in range(3):
        p, ms = start_gh(data, port, {}, log); starts["gh"].append(ms); p.terminate(); p.wait()
        q, _, ms = start_peer(); starts["peer"].append(ms); q.terminate(); q.wait()
    gh, _ = start_gh(data, port, {}, log)
    ghe, _ = start_gh(data_ed, port_ed, {"GATEHOUSE_TOKENS_SERVICE_ACCOUNT_ALGORITHM": "EdDSA"}, log)
    peer, issuer, _ = start_peer()
    idle = {"gh": rss_mib(gh.pid), "peer": rss_mib(peer.pid)}
    gbase, ebase = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port_ed}"
    peer_basic = "Basic " + base64.b64encode(f"bench:{PEER_SECRET}".encode()).decode()
    cc = "grant_type=client_credentials"
    s = {
        "gh_grant": post_script(d, "gh_grant", cc, gh_basic),
        "peer_opaque": post_script(d, "peer_opaque", cc + "&scope=read", peer_basic),
        "peer_jwt": post_script(d, "peer_jwt", cc + "&scope=read&resource=urn%3Abench%3Ajwt", peer_basic),
    }
    gh_tok = token(f"{gbase}/oauth2/token", gh_basic, cc)
    peer_tok = token(f"{issuer}/token", peer_basic, cc + "&scope=read")
    gh_intro_body = "token=" + urllib.parse.quote(gh_tok)
    peer_intro_body = "token=" + urllib.parse.quote(peer_tok)
    s["gh_intro"] = post_script(d, "gh_intro", gh_intro_body, gh_basic)
    s["peer_intro"] = post_script(d, "peer_intro", peer_intro_body, peer_basic)
    r = {k: [] for k in ("gh_rs", "gh_ed", "peer_opaque", "peer_jwt", "gh_intro", "peer_intro", "gh_jwks", "peer_jwks")}
    for _ in range(ROUNDS):
        r["gh_rs"].append(wrk(f"{gbase}/oauth2/token", s["gh_grant"]))
        r["gh_ed"].append(wrk(f"{ebase}/oauth2/token", s["gh_grant"]))
        r["peer_opaque"].append(wrk(f"{issuer}/token", s["peer_opaque"]))
        r["peer_jwt"].append(wrk(f"{issuer}/token", s["peer_jwt"]))
        r["gh_intro"].append(wrk(f"{gbase}/oauth2/introspect", s["gh_intro"]))
        r["peer_intro"].append(wrk(f"{issuer}/token/introspection", s["peer_intro"]))
        r["gh_jwks"].append(wrk(f"{gbase}/oauth2/jwks"))
        r["peer_jwks"].append(wrk(f"{issuer}/jwks"))
    loaded = {"gh": rss_mib(gh.pid), "peer": rss_mib(peer.pid)}
    fixed = None
    if shutil.which("oha"):
        fixed = {
            "gh_intro": oha_p99(f"{gbase}/oauth2/introspect", gh_basic, gh_intro_body),
            "peer_intro": oha_p99(f"{issuer}/token/introspection", peer_basic, peer_intro_body),
            "gh_grant": oha_p99(f"{ebase}/oauth2/token", gh_basic, cc),
            "peer_grant": oha_p99(f"{issuer}/token", peer_basic, cc + "&scope=read"),
        }
    for x in (gh, ghe, peer):
        x.terminate(); x.wait()

m = {k: statistics.median(v) for k, v in r.items()}
print(f"Gatehouse vs node oidc-provider (tests/peers/bench_op.mjs), wrk -t2 -c64 {SECS}s, {ROUNDS} interleaved rounds, medians:")
print(f"  {'':44} {'Gatehouse':>10} {'oidc-provider':>14} {'ratio':>7}")
rows = (("client credentials, RS256 JWT vs opaque", "gh_rs", "peer_opaque"),
        ("client credentials, RS256 JWT vs JWT", "gh_rs", "peer_jwt"),
        ("client credentials, EdDSA JWT vs opaque", "gh_ed", "peer_opaque"),
        ("client credentials, EdDSA JWT vs JWT", "gh_ed", "peer_jwt"),
        ("introspection (GH: its JWT; peer: opaque)", "gh_intro", "peer_intro"),
        ("JWKS", "gh_jwks", "peer_jwks"))
for name, a, b in rows:
    print(f"  {name:44} {m[a]:>10.0f} {m[b]:>14.0f} {m[a] / m[b]:>6.2f}x")
print(f"  EdDSA grants vs the peer's JWT-format grants: {m['gh_ed'] / m['peer_jwt']:.2f}x (goal >= 5x)")
print(f"  RSS idle: {idle['gh']:.1f} vs {idle['peer']:.1f} MiB ({idle['gh'] / idle['peer']:.2f}x); after the load "
      f"{loaded['gh']:.1f} vs {loaded['peer']:.1f} MiB ({loaded['gh'] / loaded['peer']:.2f}x)")
sg, sp = statistics.median(starts["gh"]), statistics.median(starts["peer"])
print(f"  start (exec -> first answer, median of 3): {sg:.0f} vs {sp:.0f} ms ({sg / sp:.2f}x)")
if fixed:
    print(f"  p99 at a fixed {RATE} req/s (oha, 16 connections): introspection {fixed['gh_intro']:.2f} vs {fixed['peer_intro']:.2f} ms "
          f"({fixed['gh_intro'] / fixed['peer_intro']:.2f}x); client credentials (GH EdDSA vs peer opaque) "
          f"{fixed['gh_grant']:.2f} vs {fixed['peer_grant']:.2f} ms ({fixed['gh_grant'] / fixed['peer_grant']:.2f}x)")
else:
    print("  p99 at a fixed rate: skipped (oha not installed; scripts/bench.sh installs it)")
