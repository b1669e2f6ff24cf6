/**
 * Step 3 — PID namespace: the command becomes PID 1 of its own process tree.
 *
 *   parent: unshare(CLONE_NEWUTS | CLONE_NEWPID), then re-spawn this file as `child <cmd>`
 *   child:  sethostname("container"), then execvp(<cmd>) — it keeps pid 1
 *
 * Try: npm run step 3 -- sh -c 'echo $$; ps'
 * `echo $$` says 1, but `ps` still lists the host's processes: it reads the
 * host's /proc. Step 4 gives the container its own.
 */
import { CLONE_NEWPID, CLONE_NEWUTS } from '../lib/kernel/constants.js';
import { execvp, sethostname, unshare } from '../lib/kernel/libc.js';
import { runtime, spawnChild } from '../lib/container/runtime.js';

runtime({
  // The parent runs on the host: it starts the child and waits for it.
  async parent(container) {
    // TODO(step 3): also create a PID namespace, so that the child is PID 1 in it.
    // hint: unshare() takes several CLONE_NEW* flags OR-ed together with |.
    // hint: one unshare() in the parent with both flags, CLONE_NEWUTS and CLONE_NEWPID, OR-ed together: replacing the UTS flag would drop that namespace.
    // hint: unshare(CLONE_NEWUTS | CLONE_NEWPID); — for PID, only the parent's *next* child moves in, as PID 1.
    //>> unshare(CLONE_NEWUTS);
    unshare(CLONE_NEWUTS | CLONE_NEWPID);
    // END TODO
    return spawnChild(container);
  },

  // The child is PID 1 in the new PID namespace; execvp keeps that pid.
  child(container) {
    sethostname(container.hostname);
    execvp(container.command[0], container.command);
  },
});
