"""TLS benchmarks (issue 16), figures as ratios measured in one run:
/auth/verify over TLS 1.3 with keep-alive against plain HTTP (wrk, two
servers side by side, rounds interleaved), and new TLS connections per
second (full handshake + one request) against a bare rustls server with the
same certificate (benches/tls_bare.rs). Usage:
  python3 scripts/bench_tls.py GATEHOUSE_BINARY TLS_BARE_BINARY
(scripts/bench.sh tls builds both)."""
import json, os, re, socket, ssl, statistics, subprocess, sys, tempfile, time, urllib.request

BIN, BARE = sys.argv[1], sys.argv[2]
OWNER, PW = "owner@example.com", "violet-harbour-lantern-42"
ROUND_S = 3


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def wait_port(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close(); return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def start(d, name, port, extra):
    data = os.path.join(d, name)
    pwf = os.path.join(d, "pw"); open(pwf, "w").write(PW)
    env = dict(os.environ, GATEHOUSE_DATA=data, GATEHOUSE_LOG="warn",
               GATEHOUSE_BOOTSTRAP_ADMIN_EMAIL=OWNER, GATEHOUSE_BOOTSTRAP_ADMIN_PASSWORD_FILE=pwf,
               GATEHOUSE_PASSWORD_ARGON2_MEMORY_KIB="8192", **extra)
    p = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return p


def token(base, ctx):
    req = urllib.request.Request(f"{base}/api/v1/auth/login", json.dumps({"email": OWNER, "password": PW}).encode(),
                                 {"content-type": "application/json"})
    with urllib.request.urlopen(req, context=ctx) as r:
        return json.loads(r.read())["access_token"]


def wrk(url, tok):
    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{ROUND_S}s", "-H", f"Authorization: Bearer {tok}", url],
                         capture_output=True, text=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise SystemExit(out)
    return float(m.group(1))


def handshakes(port, ctx):
    """New connections per second: connect, TLS handshake, GET /healthz, close."""
    n, end = 0, time.perf_counter() + ROUND_S
    t0 = time.perf_counter()
    while time.perf_counter() < end:
        with socket.create_connection(("127.0.0.1", port)) as s:
            with ctx.wrap_socket(s, server_hostname="localhost") as t:
                t.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                while t.recv(4096):
                    pass
        n += 1
    return n / (time.perf_counter() - t0)


with tempfile.TemporaryDirectory() as d:
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    os.chmod(key, 0o600)
    plain_port, tls_port, bare_port = free_port(), free_port(), free_port()
    procs = [start(d, "plain", plain_port, {}),
             start(d, "tls", tls_port, {"GATEHOUSE_TLS_CERT_FILE": cert, "GATEHOUSE_TLS_KEY_FILE": key})]
    procs.append(subprocess.Popen([BARE, cert, key, str(bare_port)], stdout=subprocess.DEVNULL))
    wait_port(bare_port)
    try:
        ctx = ssl.create_default_context(cafile=cert)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        plain_tok = token(f"http://127.0.0.1:{plain_port}", None)
        tls_tok = token(f"https://localhost:{tls_port}", ctx)
        rounds = {"plain": [], "tls": [], "gh_hs": [], "bare_hs": []}
        for _ in range(2):
            rounds["plain"].append(wrk(f"http://127.0.0.1:{plain_port}/auth/verify", plain_tok))
            rounds["tls"].append(wrk(f"https://127.0.0.1:{tls_port}/auth/verify", tls_tok))
            rounds["gh_hs"].append(handshakes(tls_port, ctx))
            rounds["bare_hs"].append(handshakes(bare_port, ctx))
        med = {k: statistics.median(v) for k, v in rounds.items()}
        print(json.dumps({k: [round(x) for x in v] for k, v in rounds.items()}))
        print(f"/auth/verify keep-alive: TLS 1.3 {med['tls']:.0f}/s, plain HTTP {med['plain']:.0f}/s "
              f"-> TLS/plain = {med['tls'] / med['plain']:.2f}")
        print(f"new TLS 1.3 connections (handshake + GET /healthz): Gatehouse {med['gh_hs']:.0f}/s, "
              f"bare rustls {med['bare_hs']:.0f}/s -> Gatehouse/bare = {med['gh_hs'] / med['bare_hs']:.2f}")
    finally:
        for p in procs:
            p.terminate(); p.wait()
