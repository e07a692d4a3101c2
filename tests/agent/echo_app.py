#!/usr/bin/env python3
"""A workspace app for tests/agent/apps_e2e.py: says what it received.

GET  any path      -> JSON {method, path, headers: [[name, value], ...]}
POST any path      -> the same with the body's sha256 and length, read as
                      it streams (Content-Length or chunked)
GET with Upgrade: websocket -> 101, then echoes each message back
                      (one frame at a time, unfragmented, as the test sends)

usage: echo_app.py PORT
"""
import base64
import hashlib
import http.server
import json
import struct
import sys

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # answers Expect: 100-continue

    def log_message(self, *args):
        pass

    def said(self):
        return {"method": self.command, "path": self.path,
                "headers": [[k, v] for k, v in self.headers.items()]}

    def reply(self, obj):
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def do_GET(self):
        if self.headers.get("Upgrade", "").lower() == "websocket":
            return self.websocket()
        self.reply(self.said())

    def do_POST(self):
        h, n = hashlib.sha256(), 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                left = size
                while left:
                    piece = self.rfile.read(min(left, 65536))
                    h.update(piece)
                    left -= len(piece)
                    n += len(piece)
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                piece = self.rfile.read(min(left, 65536))
                if not piece:
                    break
                h.update(piece)
                left -= len(piece)
                n += len(piece)
        out = self.said()
        out.update({"sha256": h.hexdigest(), "length": n})
        self.reply(out)

    def websocket(self):
        self.close_connection = True  # after the close frame: EOF
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(
            hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            op, n = head[0] & 0x0F, head[1] & 0x7F
            if n == 126:
                n = struct.unpack(">H", self.rfile.read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self.rfile.read(8))[0]
            mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4]
                         for i, b in enumerate(self.rfile.read(n)))
            if op == 8:  # close: answer it, done
                self.wfile.write(b"\x88\x00")
                self.wfile.flush()
                return
            frame = bytes([0x80 | op])
            frame += bytes([n]) if n < 126 else (
                b"\x7e" + struct.pack(">H", n) if n < 65536
                else b"\x7f" + struct.pack(">Q", n))
            self.wfile.write(frame + data)
            self.wfile.flush()


if __name__ == "__main__":
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])),
                                             Handler)
    server.serve_forever()
