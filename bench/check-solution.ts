// What `npm run check N` does, against the reference solution (so the bench
// measures a passing check, whatever state the participant's files are in).
import { checkStep } from '../workshop/check-runner.js';
import { main, requireStep } from '../cli/common.js';

main(async () => ((await checkStep(requireStep(process.argv[2], 'check'), 'solutions')) ? 0 : 1));
