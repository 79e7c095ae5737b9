"""A server on ADDR that closes every accepted connection first (after sending a line), so
the TIME_WAIT of each stays on its side, on ADDR's port. Without SO_REUSEADDR (the default
here; `reuse` sets it) a restart cannot bind() while those TIME_WAIT sockets last: it says
`fail errno=EADDRINUSE` and retries every 0.5 s until it binds (`ready`) or MAX_S.

usage: close_first_server.py ADDR [reuse|noreuse] [MAX_S]
"""
import errno
import select
import socket
import sys
import time

from common import addr, say

family, local = addr(sys.argv[1])
reuse = len(sys.argv) > 2 and sys.argv[2] == "reuse"
max_s = float(sys.argv[3]) if len(sys.argv) > 3 else 60
deadline = time.monotonic() + max_s
said = False
while True:
    s = socket.socket(family, socket.SOCK_STREAM)
    if reuse:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(local)
        break
    except OSError as e:
        s.close()
        if not said:
            said = True
            say("fail", errno=errno.errorcode.get(e.errno, e.errno))
        if time.monotonic() > deadline:
            sys.exit(1)
        time.sleep(0.5)
s.listen(1024)
say("ready")
while time.monotonic() < deadline:
    r, _, _ = select.select([s, sys.stdin], [], [], 0.2)
    if sys.stdin in r and not sys.stdin.buffer.read1(4096):
        break
    if s in r:
        conn, _ = s.accept()
        conn.sendall(b"bye\n")
        conn.close()
