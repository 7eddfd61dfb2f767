#!/usr/bin/env python3
"""Run a command on a new pseudo-terminal, as a user at a terminal would, and script the user.

usage: pty-drive.py SCRIPT_JSON argv...
SCRIPT_JSON: {"rows": R, "cols": C, "timeout": S,
              "steps": [{"after": "text seen so far", "send": "keys"} | {"after": "...", "resize": [R, C]}]}
Prints everything the terminal showed, then a last line "EXIT <code>" (128+signal when killed).
"""
import fcntl, json, os, pty, select, struct, sys, termios, time

script = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', script['rows'], script['cols'], 0, 0))
steps = list(script.get('steps', []))
out = b''
deadline = time.time() + script.get('timeout', 20)
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.1)
    if r:
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: the other side is closed
            break
        if not data:
            break
        out += data
    while steps and steps[0]['after'].encode() in out:
        step = steps.pop(0)
        if 'send' in step:
            os.write(fd, step['send'].encode())
        if 'resize' in step:
            rows, cols = step['resize']
            # The kernel sends SIGWINCH to the foreground process group of the terminal.
            fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))
else:
    os.kill(pid, 9)
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors='replace'))
print('\nEXIT', os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
