"""An SMTP server for the invite-mail tests (aiosmtpd from PyPI): AUTH PLAIN for one user without TLS,
each accepted message written to DIRECTORY as <n>.eml with its envelope in <n>.json.

    python smtp_server.py PORT DIRECTORY USER PASSWORD

Prints "ready" once it listens; runs until its standard input closes.
"""

import json
import os
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, directory, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
os.makedirs(directory, exist_ok=True)


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == user.encode() and auth_data.password == password.encode()
    return AuthResult(success=ok)


class Save:
    count = 0

    async def handle_DATA(self, server, session, envelope):
        if not session.authenticated:
            return "530 Authentication required"
        Save.count += 1
        base = os.path.join(directory, str(Save.count))
        with open(base + ".eml", "wb") as handle:
            handle.write(envelope.original_content)
        with open(base + ".json", "w") as handle:
            json.dump({"from": envelope.mail_from, "to": envelope.rcpt_tos}, handle)
        return "250 OK"


controller = Controller(Save(), hostname="127.0.0.1", port=port, authenticator=authenticator, auth_require_tls=False,
                        auth_exclude_mechanism=["LOGIN"])
controller.start()
print("ready", flush=True)
sys.stdin.read()
controller.stop()
