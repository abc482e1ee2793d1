"""A real SMTP server on loopback for the tests: aiosmtpd, saving each
message it receives as one file in a folder.

Usage: smtp_sink.py PORT DIR [--starttls CERT KEY] [--login USER PASSWORD]

With --starttls the server requires STARTTLS before mail; with --login it
requires AUTH (after TLS) with that user and password, and records each
accepted login in DIR/logins.txt. Prints "ready" once it listens."""
import os
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Save:
    def __init__(self, folder):
        self.folder = folder
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        name = os.path.join(self.folder, f"{time.time_ns()}-{self.n}.eml")
        with open(name + ".tmp", "wb") as f:
            f.write(envelope.content)
        os.rename(name + ".tmp", name)
        return "250 OK"


args = sys.argv[1:]
port, folder = int(args[0]), args[1]
options = {}
rest = args[2:]
while rest:
    flag = rest.pop(0)
    if flag == "--starttls":
        cert, key = rest.pop(0), rest.pop(0)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        options.update(tls_context=context, require_starttls=True)
    elif flag == "--login":
        user, password = rest.pop(0).encode(), rest.pop(0).encode()

        def check(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (user, password)
            if ok:
                with open(os.path.join(folder, "logins.txt"), "a") as f:
                    f.write(auth_data.login.decode() + "\n")
            return AuthResult(success=ok)

        options.update(authenticator=check, auth_required=True)
    else:
        raise SystemExit(f"unknown flag {flag}")

controller = Controller(Save(folder), hostname="127.0.0.1", port=port, **options)
controller.start()
print("ready", flush=True)
try:
    while True:
        time.sleep(3600)
finally:
    controller.stop()
