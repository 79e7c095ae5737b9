"""A client that connects to DST and closes each connection at once, first, as fast as it
can (or RATE per second), until COUNT are made or connect() fails; after a failure it retries
every 0.5 s. Says `start`, `fail errno=NAME made=N` (first failure of each errno) and
`reached made=N`, then waits for stdin to close or MAX_S.

usage: close_client.py DST [COUNT] [RATE] [MAX_S]
"""
import errno
import socket
import sys
import time

from common import addr, say, wait_for_stdin_close

family, dst = addr(sys.argv[1])
count = int(sys.argv[2]) if len(sys.argv) > 2 else 1 << 30
rate = float(sys.argv[3]) if len(sys.argv) > 3 else 0
max_s = float(sys.argv[4]) if len(sys.argv) > 4 else 60
deadline = time.monotonic() + max_s
made, said = 0, set()
while made < count and time.monotonic() < deadline:
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.connect(dst)
    except OSError as e:
        name = errno.errorcode.get(e.errno, str(e.errno))
        if name not in said:
            said.add(name)
            say("fail", errno=name, made=made)
        s.close()
        time.sleep(0.5)
        continue
    s.close()
    made += 1
    if made == 1:
        say("start")
    if rate > 0:
        time.sleep(1 / rate)
say("reached", made=made)
wait_for_stdin_close(max(0, deadline - time.monotonic()))
