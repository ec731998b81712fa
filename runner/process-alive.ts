// Whether a process of this host still exists: signal 0 checks without sending anything. EPERM means it
// exists but belongs to someone else.
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (cause) {
    return (cause as NodeJS.ErrnoException).code === 'EPERM';
  }
}
