"""An HTTP/1.1 upstream that answers every request with a 2-byte body and keeps the
connection open until the client closes it, as application servers do: when a proxy closes
first, the TIME_WAIT is on the proxy's side. Says `ready`, then serves until stdin closes or
MAX_S.

usage: http_upstream.py ADDR [MAX_S]
"""
import selectors
import socket
import sys
import time

from common import addr, say

family, local = addr(sys.argv[1])
max_s = float(sys.argv[2]) if len(sys.argv) > 2 else 60
s = socket.socket(family, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(local)
s.listen(4096)
s.setblocking(False)
sel = selectors.DefaultSelector()
sel.register(s, selectors.EVENT_READ, None)
sel.register(sys.stdin, selectors.EVENT_READ, "stdin")
pending = {}
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
say("ready")
deadline = time.monotonic() + max_s
while time.monotonic() < deadline:
    for key, _ in sel.select(0.2):
        if key.data == "stdin":
            if not sys.stdin.buffer.read1(4096):
                sys.exit(0)
        elif key.data is None:
            try:
                while True:
                    conn, _ = s.accept()
                    conn.setblocking(False)
                    pending[conn] = b""
                    sel.register(conn, selectors.EVENT_READ, "conn")
            except BlockingIOError:
                pass
        else:
            conn = key.fileobj
            try:
                data = conn.recv(65536)
            except OSError:
                data = b""
            if not data:
                sel.unregister(conn)
                pending.pop(conn, None)
                conn.close()
                continue
            buf = pending[conn] + data
            while b"\r\n\r\n" in buf:
                _, _, buf = buf.partition(b"\r\n\r\n")
                try:
                    conn.sendall(RESPONSE)
                except OSError:
                    break
            pending[conn] = buf
