#!/usr/bin/env python3
"""The runner's spawn helper: starts stage processes with os.posix_spawn for the local executor.

Started by runner/executors/spawn-server.ts as `python3 -I -S spawn-helper.py` in the stages' cwd; see that
file for why (Node's child_process forks the whole runner and blocks its event loop until the child has
exec'd). Earns its place: 1000 `touch` stages merged into one (bench/runner-peers.ts' fanin-1000 graph,
`node bin/runner.js run pipeline.yaml -j 2`, cold) took 3.2 and 3.5 s through this helper against 5.2 and
5.2 s with RUNNER_SPAWN=node (execa), two runs each, on the 2-core VM while other work shared it (load ~2.5),
2026-12-06.

Protocol: JSON lines. Requests on stdin:
  {"op": "spawn", "id": 1, "argv": [...], "env": {...}, "log": "/abs/log", "header": "$ ...\n"}
  {"op": "kill", "id": 1, "signal": 15}
Replies on stdout: {"ready": true} once (false where this Python or kernel lacks pidfds), then per request
{"id": 1, "error": "...", "errno": 2} (not started) or, when it ended, {"id": 1, "exit": 0} (a negative exit
is the signal that ended it). "logError" is added to an exit when the output could not be written to the
log: the stage still ran and its exit is told as it was.
"""
import errno, json, os, select, signal, sys
def usable():
    if not all(hasattr(os, name) for name in ('posix_spawn', 'pidfd_open', 'waitstatus_to_exitcode')) or not hasattr(signal, 'pidfd_send_signal'):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))  # the kernel may lack it (Linux < 5.3)
        return True
    except OSError:
        return False
out = sys.stdout.buffer
if not usable():
    out.write(b'{"ready": false}\n'); out.flush(); sys.exit(0)
# Ctrl-C and a TERM of the process group are for the runner, which then asks for its stages to be killed.
for s in (signal.SIGINT, signal.SIGTERM):
    signal.signal(s, signal.SIG_IGN)
RESET = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM)
def find(program, path):
    if '/' in program:
        return program
    for folder in path.split(':'):
        candidate = os.path.join(folder or '.', program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(errno.ENOENT, 'not found')
# One thread, no per-stage threads: posix_spawn (vfork) returns once the child has exec'd, and each child is
# watched through a pidfd in the same epoll set as the requests. A kill goes through the pidfd, which names
# that process and no other, and the pidfd is closed only after the child is reaped: a reused pid is never hit.
poll = select.epoll()
running = {}  # pidfd -> (id, pid, read end of the stage's output pipe, its logs entry)
by_id = {}  # id -> pidfd
logs = {}  # read end -> [log path, header, log fd (None until the first byte), why the log can't be written]
replies = []
closed = set()  # fds closed while handling this poll's events: a later event of the batch names a stale fd
def spawn(request):
    job, argv = request['id'], request['argv']
    # The output goes through a pipe, so the log is created only when the stage writes something: most
    # trivial stages write nothing, and creating a file is slow after mass deletes on this disk.
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        env = request['env']
        pid = os.posix_spawn(find(argv[0], env.get('PATH', '')), argv, env, file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, '/dev/null', os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, w, 1), (os.POSIX_SPAWN_DUP2, w, 2)], setsigdef=RESET, setsigmask=())
    except OSError as error:
        os.close(r)
        message = 'program not found: ' + argv[0] if error.errno == errno.ENOENT else (error.strerror or str(error)) + ': ' + argv[0]
        return replies.append({'id': job, 'error': message, 'errno': error.errno or 0})
    finally:
        os.close(w)
    os.set_blocking(r, False)
    entry = logs[r] = [request['log'], request['header'].encode(), None, None]
    poll.register(r, select.EPOLLIN)
    pidfd = os.pidfd_open(pid)
    running[pidfd] = (job, pid, r, entry)
    by_id[job] = pidfd
    poll.register(pidfd, select.EPOLLIN)
def close(fd):
    os.close(fd)
    closed.add(fd)
def relay(r):
    # Copies what is in the pipe to the log (opened, header first, at the first byte); closes both at EOF.
    entry = logs[r]
    while True:
        try:
            data = os.read(r, 1 << 16)
        except BlockingIOError:
            return
        if not data:
            poll.unregister(r)
            close(r)
            if entry[2] is not None:
                os.close(entry[2])
            del logs[r]
            return
        if entry[3] is not None:
            continue  # the log can't be written: drained, so the stage does not block; told with its exit
        try:
            if entry[2] is None:
                entry[2] = os.open(entry[0], os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
                data = entry[1] + data
            view = memoryview(data)
            while view:
                view = view[os.write(entry[2], view):]
        except OSError as error:
            entry[3] = 'cannot write the log ' + entry[0] + ': ' + (error.strerror or str(error))
def reap(pidfd):
    job, pid, r, entry = running.pop(pidfd)
    del by_id[job]
    poll.unregister(pidfd)
    status = os.waitpid(pid, 0)[1]
    close(pidfd)
    # What the stage wrote before it ended is in the log before its exit is told (a background child that
    # keeps the pipe open is relayed on, after the reply).
    if r in logs:
        relay(r)
    reply = {'id': job, 'exit': os.waitstatus_to_exitcode(status)}
    if entry[3] is not None:
        reply['logError'] = entry[3]
    replies.append(reply)
def handle(request):
    if request['op'] == 'spawn':
        spawn(request)
    elif request['id'] in by_id:
        try:
            signal.pidfd_send_signal(by_id[request['id']], request['signal'])
        except ProcessLookupError:
            pass  # it has just ended; its exit is on the way
stdin = sys.stdin.fileno()
poll.register(stdin, select.EPOLLIN)
out.write(b'{"ready": true}\n'); out.flush()
pending = b''
runner_gone = False
while True:
    if runner_gone and not logs and not running:
        sys.exit(0)
    closed.clear()
    for fd, _ in poll.poll():
        if fd in closed:
            continue
        if fd in running:
            reap(fd)
        elif fd in logs:
            relay(fd)
        elif fd == stdin and not runner_gone:
            data = os.read(stdin, 1 << 16)
            if not data:
                # The runner is gone: running stages are left alone (as a killed runner's children would be),
                # their output still relayed to their logs until they close it.
                runner_gone = True
                poll.unregister(stdin)
                continue
            lines = (pending + data).split(b'\n')
            pending = lines.pop()
            for line in lines:
                handle(json.loads(line))
    if replies and not runner_gone:
        try:
            out.write(b''.join(json.dumps(r).encode() + b'\n' for r in replies)); out.flush()
        except BrokenPipeError:
            runner_gone = True
    replies.clear()
