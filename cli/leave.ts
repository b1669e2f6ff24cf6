// npm run leave: stop reporting `npm run check` results to the room, and
// take this checkout's row off the instructor's board.
import chalk from 'chalk';
import { forgetJoinedRoom, joinedRoom, send } from '../workshop/room/client.js';
import { EXIT, WorkshopError } from '../lib/kernel/errors.js';
import { main } from './common.js';

main(async () => {
  if (process.argv.length > 2) throw new WorkshopError(`unexpected ${JSON.stringify(process.argv[2])}`, 'Usage: npm run leave', EXIT.usage);
  const room = joinedRoom();
  if (!room) {
    forgetJoinedRoom(); // a damaged file, if any
    console.log('You are not in a room: `npm run check` reports nowhere.');
    return 0;
  }
  forgetJoinedRoom();
  const outcome = await send(room, 'leave', JSON.stringify({ v: 1, id: room.id }), 1000);
  console.log(`${chalk.green('✓')} Left the room at ${room.origin}: \`npm run check\` reports nowhere now.`);
  if (!outcome.ok) console.log(chalk.dim(`  (the room did not answer: ${outcome.reason}; your row stays on its board until it closes)`));
  return 0;
});
