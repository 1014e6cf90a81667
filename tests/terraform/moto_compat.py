"""A loopback proxy in front of the moto server for Terraform's AWS provider.

The provider calls two Step Functions actions that moto 5.2 does not implement (it answers
500 and the provider retries until it gives up):
  - ValidateStateMachineDefinition, whenever a definition is known at plan time: answered
    here with a real check that the definition is JSON with StartAt and States;
  - ListStateMachineVersions, when reading a machine: answered with no versions (the module
    publishes none).
Every other request goes to moto unchanged.

    python moto_compat.py UPSTREAM_URL PORT_FILE
Binds 127.0.0.1 on a free port and writes the port to PORT_FILE once it is listening.
"""

import http.client
import json
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPSTREAM = urllib.parse.urlsplit(sys.argv[1])
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


def validate_definition(body: bytes) -> dict:
    diagnostics = []
    try:
        definition = json.loads(json.loads(body or b"{}").get("definition", ""))
        for key in ("StartAt", "States"):
            if key not in definition:
                diagnostics.append({"severity": "ERROR", "code": "SCHEMA_VALIDATION_FAILED",
                                    "message": f"missing {key}", "location": "/"})
    except (ValueError, AttributeError) as exc:
        diagnostics.append({"severity": "ERROR", "code": "INVALID_JSON_DESCRIPTION",
                            "message": str(exc), "location": "/"})
    return {"result": "FAIL" if diagnostics else "OK", "diagnostics": diagnostics, "truncated": False}


LOCAL_ACTIONS = {
    "AWSStepFunctions.ValidateStateMachineDefinition": validate_definition,
    "AWSStepFunctions.ListStateMachineVersions": lambda _body: {"stateMachineVersions": []},
}


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: moto keeps its own log
        pass

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        target = self.headers.get("X-Amz-Target")
        if target in LOCAL_ACTIONS:
            out = json.dumps(LOCAL_ACTIONS[target](body)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)
            return
        conn = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    with open(sys.argv[2], "w", encoding="ascii") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()
