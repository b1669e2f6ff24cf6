/**
 * Step 2 — UTS namespace: the container gets its own hostname.
 *
 *   parent: unshare(CLONE_NEWUTS), then re-spawn this file as `child <cmd>`
 *   child:  sethostname("container"), then execvp(<cmd>)
 *
 * Try: npm run step 2 -- hostname      (then `hostname` on the host: unchanged)
 */
// Your exercise: do the step 2 TODOs below, then `npm run check 2`.
// Stuck? `npm run hint 2`. Start over: `npm run reset 2`.
import { CLONE_NEWUTS } from '../lib/kernel/constants.js';
import { execvp, sethostname, unshare } from '../lib/kernel/libc.js';
import { runtime, spawnChild } from '../lib/container/runtime.js';

runtime({
  // The parent runs on the host: it starts the child and waits for it.
  async parent(container) {
    // TODO(step 2): give the child its own UTS (hostname) namespace.
    // hint: a new UTS namespace must exist before the child starts: the parent makes one for itself, and the child it spawns next is born in it.
    return spawnChild(container);
  },

  // The child turns into the container's command.
  child(container) {
    // TODO(step 2): set the container's hostname before running the command.
    // hint: the child is in the new UTS namespace, so changing the hostname there leaves the host's alone.
    execvp(container.command[0], container.command);
  },
});
