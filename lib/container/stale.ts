// Leftovers of runs that were killed.
//
// A runtime removes its container's cgroup and folders when the container
// exits; if the runtime itself is killed (SIGKILL, a closed laptop lid…), the
// next run cleans up after it. Generated container ids name the runtime that
// made them, cfs-<runtime pid>-<random hex>, so a leftover is easy to spot:
// its runtime's pid no longer exists. (Ids given with --id are never touched.)

/** cfs-<pid>-<hex>: a generated container id (see parseContainer in lib/container/runtime.ts). */
const GENERATED_ID = /^cfs-(\d+)-[0-9a-f]+$/;

/** True when `id` is a generated container id whose runtime has exited. */
export function isStale(id: string): boolean {
  const match = GENERATED_ID.exec(id);
  if (!match) return false;
  try {
    process.kill(Number(match[1]), 0); // signal 0: only checks that the process exists
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH'; // EPERM: it exists, as another user's process
  }
}
