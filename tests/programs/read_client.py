"""A client that makes COUNT connections to DST one after the other, reads each until the
server closes, then closes its end (the server closed first). Says `reached made=N`, then
waits for stdin to close or MAX_S.

usage: read_client.py DST COUNT [MAX_S]
"""
import socket
import sys

from common import addr, say, wait_for_stdin_close

family, dst = addr(sys.argv[1])
count = int(sys.argv[2])
max_s = float(sys.argv[3]) if len(sys.argv) > 3 else 60
made = 0
for _ in range(count):
    with socket.create_connection(dst) as s:
        while s.recv(4096):
            pass
    made += 1
say("reached", made=made)
wait_for_stdin_close(max_s)
