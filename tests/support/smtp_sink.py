"""A real SMTP server on loopback for the tests: aiosmtpd, saving each
message it receives as one file in a folder. Usage: smtp_sink.py PORT DIR.
Runs until killed; prints "ready" once it listens."""
import os
import sys
import time

from aiosmtpd.controller import Controller


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


port, folder = int(sys.argv[1]), sys.argv[2]
controller = Controller(Save(folder), hostname="127.0.0.1", port=port)
controller.start()
print("ready", flush=True)
try:
    while True:
        time.sleep(3600)
finally:
    controller.stop()
