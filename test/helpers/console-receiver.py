#!/usr/bin/env python3
"""Test console socket: accept one connection on argv[1], take the pty master sent with
SCM_RIGHTS (recording the name that came with it), then copy everything the container writes to
its terminal into argv[2] until the container closes it (or 30 s pass)."""
import os, select, socket, sys, time

path, out = sys.argv[1], sys.argv[2]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(1)
open(out + '.ready', 'w').close()
srv.settimeout(30)
conn, _ = srv.accept()
msg, fds, _, _ = socket.recv_fds(conn, 4096, 4)
with open(out + '.name', 'w') as f:
    f.write(f'{msg.decode()} {len(fds)}')
master = fds[0]
deadline = time.time() + 30
with open(out, 'wb') as f:
    while time.time() < deadline:
        r, _, _ = select.select([master], [], [], 1)
        if not r:
            continue
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the last slave fd closed
            break
        if not data:
            break
        f.write(data)
        f.flush()
