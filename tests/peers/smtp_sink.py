"""A real SMTP server for the tests (aiosmtpd): STARTTLS required, AUTH
(PLAIN/LOGIN) required, every delivered message written to --dir as a file.
Prints "ready" once it listens. Usage:
  smtp_sink.py --port P --dir D --cert leaf.pem --key leaf.key --user U --password W
"""
import argparse
import os
import signal
import ssl
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

ap = argparse.ArgumentParser()
for a in ("--port", "--dir", "--cert", "--key", "--user", "--password"):
    ap.add_argument(a, required=True)
args = ap.parse_args()


class Store:
    async def handle_DATA(self, server, session, envelope):
        name = os.path.join(args.dir, f"{time.time_ns()}.eml")
        with open(name + ".tmp", "wb") as f:
            f.write(b"X-Rcpt-To: " + ",".join(envelope.rcpt_tos).encode() + b"\r\n")
            f.write(b"X-Authenticated: " + str(bool(session.authenticated)).encode() + b"\r\n")
            f.write(envelope.content)
        os.rename(name + ".tmp", name)
        return "250 OK"


def check(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == args.user.encode() \
        and auth_data.password == args.password.encode()
    return AuthResult(success=ok, handled=False)


ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(args.cert, args.key)
controller = Controller(Store(), hostname="127.0.0.1", port=int(args.port), server_hostname="localhost",
                        tls_context=ctx, require_starttls=True, authenticator=check, auth_required=True)
controller.start()
print("ready", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
stop.wait()
controller.stop()
