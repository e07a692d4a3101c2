#!/usr/bin/env python3
"""A small app for the connect tests, run inside a workspace: every GET
answers JSON with what the app received (method, path, headers), so a test
can see what the server's app proxy passes on and what it keeps back (the
session cookie). `GET …/redirect` answers 302 to `./landed` (relative), for
the proxy's rewriting of Location.

usage: echo_app.py PORT
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path.endswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "landed")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps({"app": "echo", "method": self.command,
                           "path": self.path,
                           "headers": dict(self.headers.items())}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("echo_app: " + fmt % args + "\n")


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Echo).serve_forever()
