"""A server that accepts every connection on ADDR, reads it until the client closes, then
waits DELAY_S before closing its end: the client's socket goes to the FIN_WAIT2 substate
of a timewait socket first and to TIME_WAIT when this FIN arrives. Says `ready`, then serves
until stdin closes or MAX_S.

usage: slow_close_server.py ADDR DELAY_S [MAX_S]
"""
import select
import socket
import sys
import threading
import time

from common import addr, say

family, local = addr(sys.argv[1])
delay = float(sys.argv[2])
max_s = float(sys.argv[3]) if len(sys.argv) > 3 else 60


def handle(conn):
    while conn.recv(4096):
        pass
    time.sleep(delay)
    conn.close()


s = socket.socket(family, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(local)
s.listen(4096)
say("ready")
deadline = time.monotonic() + max_s
while time.monotonic() < deadline:
    r, _, _ = select.select([s, sys.stdin], [], [], 0.2)
    if sys.stdin in r and not sys.stdin.buffer.read1(4096):
        break
    if s in r:
        conn, _ = s.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()
