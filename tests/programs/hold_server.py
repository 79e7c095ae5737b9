"""A server that accepts every connection on ADDR and never closes (nor reads) any: once a
client closes, its end waits in CLOSE_WAIT here and the client's in FIN_WAIT2. Says `ready`,
then accepts until stdin closes or MAX_S.

usage: hold_server.py ADDR [MAX_S]
"""
import select
import socket
import sys
import time

from common import addr, raise_nofile, say

family, local = addr(sys.argv[1])
max_s = float(sys.argv[2]) if len(sys.argv) > 2 else 60
raise_nofile(8192)
s = socket.socket(family, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(local)
s.listen(4096)
say("ready")
kept = []
deadline = time.monotonic() + max_s
while time.monotonic() < deadline:
    r, _, _ = select.select([s, sys.stdin], [], [], 0.2)
    if sys.stdin in r and not sys.stdin.buffer.read1(4096):
        break
    if s in r:
        conn, _ = s.accept()
        kept.append(conn)
