"""Runs the release binary and prints benchmark figures as ratios against
baselines from the same run. Called by scripts/bench.sh."""
import http.client, json, os, re, socket, statistics, subprocess, sys, tempfile, time, urllib.request

BIN, BASE, RAW = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
OWNER, PW = "owner@example.com", "violet-harbour-lantern-42"


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def start(data, port, env_extra=None):
    env = dict(os.environ, GATEHOUSE_DATA=data, GATEHOUSE_LOG="warn", **(env_extra or {}))
    t0 = time.perf_counter()
    p = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return p, (time.perf_counter() - t0) * 1000
        except Exception:
            time.sleep(0.0005)


def post(url, body, token=None):
    req = urllib.request.Request(url, json.dumps(body).encode(), {"content-type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def wrk(url, headers=()):
    args = ["wrk", "-t2", "-c64", "-d4s", "--latency", url]
    for h in headers:
        args += ["-H", h]
    out = subprocess.run(args, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    return rps, p99


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024


with tempfile.TemporaryDirectory() as d:
    data, port = os.path.join(d, "data"), free_port()
    pwf = os.path.join(d, "pw"); open(pwf, "w").write(PW)
    boot = {"GATEHOUSE_BOOTSTRAP_ADMIN_EMAIL": OWNER, "GATEHOUSE_BOOTSTRAP_ADMIN_PASSWORD_FILE": pwf}
    p, first_ms = start(data, port, boot)
    p.terminate(); p.wait()
    restarts = []
    for _ in range(5):
        p, ms = start(data, port); restarts.append(ms)
        if _ < 4:
            p.terminate(); p.wait()
    time.sleep(1.0)
    rss = rss_mib(p.pid)
    base = f"http://127.0.0.1:{port}"
    conn = http.client.HTTPConnection("127.0.0.1", port)  # keep-alive, as real clients do

    def login_ms(email, pw, n=25):
        xs, body = [], None
        for _ in range(n):
            t = time.perf_counter()
            conn.request("POST", "/api/v1/auth/login", json.dumps({"email": email, "password": pw}),
                         {"content-type": "application/json"})
            body = conn.getresponse().read()
            xs.append((time.perf_counter() - t) * 1000)
        return statistics.median(xs), body

    # Interleave rounds of raw hashes and sign-ins, so both see the same machine load.
    raw_rounds, ok_rounds, wrong_rounds, unknown_rounds = [], [], [], []
    for _ in range(6):
        raw_rounds.append(float(subprocess.run([RAW, "argon2", "5"], capture_output=True, text=True).stdout))
        ms, body = login_ms(OWNER, PW, 5); ok_rounds.append(ms)
        wrong_rounds.append(login_ms(OWNER, "wrong-password-000", 5)[0])
        unknown_rounds.append(login_ms("nobody@example.com", "wrong-password-000", 5)[0])
    raw_ms, ok_ms = statistics.median(raw_rounds), statistics.median(ok_rounds)
    wrong_ms, unknown_ms = statistics.median(wrong_rounds), statistics.median(unknown_rounds)
    token = json.loads(body)["access_token"]
    auth = f"Authorization: Bearer {token}"
    # Three interleaved rounds; medians (the machine is shared and noisy).
    rounds = {"h": [], "hh": [], "m": []}
    for _ in range(3):
        rounds["h"].append(wrk(f"{base}/healthz"))
        rounds["hh"].append(wrk(f"{base}/healthz", [auth]))
        rounds["m"].append(wrk(f"{base}/api/v1/me", [auth]))
    med = lambda xs, i: statistics.median(x[i] for x in xs)
    h_rps, h_p99 = med(rounds["h"], 0), med(rounds["h"], 1)
    hh_rps = med(rounds["hh"], 0)
    m_rps, m_p99 = med(rounds["m"], 0), med(rounds["m"], 1)
    ratios = [m[0] / h[0] for m, h in zip(rounds["m"], rounds["h"])]
    p.terminate(); p.wait()

size = os.path.getsize(BIN) / 1024 / 1024
print(f"password sign-in (API, keep-alive, 6 interleaved rounds of 5): {ok_ms:.1f} ms vs raw Argon2id hash "
      f"{raw_ms:.1f} ms -> {ok_ms / raw_ms:.2f}x (goal <= 1.15x)")
print(f"  same time for a wrong password {wrong_ms:.1f} ms ({wrong_ms / ok_ms:.2f}x) and an unknown e-mail "
      f"{unknown_ms:.1f} ms ({unknown_ms / ok_ms:.2f}x)")
print(f"GET /api/v1/me bearer: {m_rps:.0f} req/s (p99 {m_p99:.2f} ms) vs GET /healthz {h_rps:.0f} req/s "
      f"(p99 {h_p99:.2f} ms) -> {m_rps / h_rps:.2f}x (goal >= 0.8x); per-round ratios "
      + ", ".join(f"{r:.2f}" for r in ratios))
print(f"  vs GET /healthz carrying the same {len(token)}-byte bearer header {hh_rps:.0f} req/s "
      f"-> {m_rps / hh_rps:.2f}x (the header alone costs /healthz {hh_rps / h_rps:.2f}x)")
print(f"idle RSS after start: {rss:.1f} MiB (goal < 25 MB)")
print(f"exec -> /readyz: restart median {statistics.median(restarts):.1f} ms (goal < 100 ms); "
      f"first start incl. RSA key generation and owner bootstrap {first_ms:.1f} ms")
print(f"release binary size: {size:.1f} MiB (goal < 30 MB)")
print(f"raw RS256 signing (pre-parsed key): {BASE['rs256_signs_per_sec']:.0f}/s")
