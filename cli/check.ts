// npm run check N — runs step N's checks (and the earlier steps') against the
// participant's steps/ file. Exit 0 only if all pass. Never moves on by itself.
import { checkStep } from '../workshop/check-runner.js';
import { enterDelegatedCgroup, main, requireStep } from './common.js';

main(async () => {
  const step = requireStep(process.argv[2], 'check');
  await enterDelegatedCgroup(step);
  return (await checkStep(step)) ? 0 : 1;
});
