/**
 * Step 1 — exec: run a command the way every container runtime does.
 *
 *   parent: re-spawn this file as `child <cmd>` and wait for it
 *   child:  execvp(<cmd>): the command replaces the child process
 *
 * Nothing is isolated yet: this is the skeleton the next steps build on.
 * Try: npm run step 1 -- sh -c 'hostname; echo $$; ls /'
 */
import { execvp } from '../lib/kernel/libc.js';
import { runtime, spawnChild } from '../lib/container/runtime.js';

runtime({
  // The parent runs on the host: it starts the child and waits for it.
  async parent(container) {
    return spawnChild(container);
  },

  // The child turns into the container's command: execvp(3) replaces this
  // process (same pid, same stdin/stdout/stderr) with the program.
  child(container) {
    // TODO(step 1): replace the child with the container's command.
    // hint: the child turns into the command with exec: the program replaces the calling process (same pid, same stdin, stdout and stderr).
    // hint: execvp(file, argv) from lib/kernel/libc.ts: file is searched in PATH, argv is the whole command line with the program's name first — container.command already is one.
    // hint: execvp(container.command[0], container.command); — lib/kernel/libc.ts builds the NULL-terminated argv for you.
    //>> process.exit(0);
    execvp(container.command[0], container.command);
    // END TODO
  },
});
