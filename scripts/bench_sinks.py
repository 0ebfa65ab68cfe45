"""Sign-in throughput and p99 with three audit sinks attached vs none, in one
run (issue 15): none, then a syslog TCP, a webhook and a Splunk HEC sink
(receivers on loopback in this script), then none again; the figure is the
middle phase against the mean of the two others. Also the sinks' backlog at
the end (whether delivery kept up). Called by `scripts/bench.sh sinks`, or:
python3 scripts/bench_sinks.py BIN [SECONDS_PER_PHASE]
Light Argon2 (8 MiB, t=1), so the audit write is a larger share of a sign-in."""
import http.server, json, os, re, socket, socketserver, subprocess, sys, tempfile, threading, time, urllib.request

BIN = sys.argv[1]
SECS = int(sys.argv[2]) if len(sys.argv) > 2 else 8
OWNER, PW = "owner@example.com", "violet-harbour-lantern-42"


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def call(method, url, body=None, token=None):
    h = {"content-type": "application/json"}
    if token:
        h["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, json.dumps(body).encode() if body is not None else None, h, method=method)
    with urllib.request.urlopen(req) as r:
        raw = r.read()
        return json.loads(raw) if raw else None


received = {"http": 0, "syslog_bytes": 0}


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("content-length", 0))
        self.rfile.read(n)
        received["http"] += 1
        body = b'{"text":"Success","code":0}' if "collector" in self.path else b"{}"
        self.send_response(200); self.send_header("content-length", str(len(body))); self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class Syslog(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            b = self.request.recv(65536)
            if not b:
                return
            received["syslog_bytes"] += len(b)


def wrk(url, lua):
    out = subprocess.run(["wrk", "-t2", "-c8", f"-d{SECS}s", "--latency", "-s", lua, url],
                         capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    return rps, p99


def main():
    hport, sport, gport = free_port(), free_port(), free_port()
    http_srv = http.server.ThreadingHTTPServer(("127.0.0.1", hport), Hook)
    threading.Thread(target=http_srv.serve_forever, daemon=True).start()
    sys_srv = socketserver.ThreadingTCPServer(("127.0.0.1", sport), Syslog)
    threading.Thread(target=sys_srv.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as d:
        pw = os.path.join(d, "pw"); open(pw, "w").write(PW + "\n")
        env = dict(os.environ, GATEHOUSE_DATA=os.path.join(d, "data"), GATEHOUSE_LOG="warn",
                   GATEHOUSE_BOOTSTRAP_ADMIN_EMAIL=OWNER, GATEHOUSE_BOOTSTRAP_ADMIN_PASSWORD_FILE=pw,
                   GATEHOUSE_PASSWORD_ARGON2_MEMORY_KIB="8192", GATEHOUSE_PASSWORD_ARGON2_ITERATIONS="1",
                   GATEHOUSE_RATE_LIMIT_AUTH_BURST="1000000", GATEHOUSE_RATE_LIMIT_AUTH_PER_MINUTE="1000000")
        p = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{gport}"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{gport}"
        try:
            for _ in range(200):
                try:
                    urllib.request.urlopen(f"{base}/readyz", timeout=1); break
                except Exception:
                    time.sleep(0.05)
            token = call("POST", f"{base}/api/v1/auth/login", {"email": OWNER, "password": PW})["access_token"]
            lua = os.path.join(d, "login.lua")
            open(lua, "w").write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                                 f'wrk.body = \'{{"email":"{OWNER}","password":"{PW}"}}\'\n')
            url = f"{base}/api/v1/auth/login"
            none1 = wrk(url, lua)
            ids = []
            for body in [
                {"name": "bench syslog", "kind": "syslog", "syslog": {"transport": "tcp", "host": "127.0.0.1", "port": sport}},
                {"name": "bench webhook", "kind": "webhook", "webhook": {"url": f"http://127.0.0.1:{hport}/hook", "secret": "bench-secret-0123456789"}},
                {"name": "bench hec", "kind": "splunk_hec", "splunk_hec": {"url": f"http://127.0.0.1:{hport}", "token": "bench"}},
            ]:
                ids.append(call("POST", f"{base}/api/v1/audit/sinks", body, token)["id"])
            three = wrk(url, lua)
            time.sleep(3)
            backlog = [call("GET", f"{base}/api/v1/audit/sinks/{i}", None, token)["backlog"] for i in ids]
            for i in ids:
                call("DELETE", f"{base}/api/v1/audit/sinks/{i}", None, token)
            none2 = wrk(url, lua)
        finally:
            p.terminate(); p.wait()
    base_rps = (none1[0] + none2[0]) / 2
    base_p99 = (none1[1] + none2[1]) / 2
    print(f"sign-ins with three audit sinks (syslog tcp, webhook, splunk_hec) vs none, {SECS} s per phase, wrk -c8:")
    print(f"  none: {none1[0]:.0f} and {none2[0]:.0f} req/s, p99 {none1[1]:.1f} / {none2[1]:.1f} ms")
    print(f"  three sinks: {three[0]:.0f} req/s, p99 {three[1]:.1f} ms")
    print(f"  throughput ratio (three sinks / none): {three[0] / base_rps:.2f}x; p99 ratio: {three[1] / base_p99:.2f}x")
    print(f"  backlog 3 s after the load: {backlog}; receivers got {received['http']} HTTP batches, "
          f"{received['syslog_bytes']} syslog bytes")


main()
