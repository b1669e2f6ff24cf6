// npm run join URL [-- --name NAME]
//
// Report this checkout's `npm run check` results to the instructor's room:
// the step, each check's name and pass/fail, a failing check's error class.
// Never file contents, messages or the environment. `npm run leave` stops it.
import chalk from 'chalk';
import { parseArgs } from 'node:util';
import { EXIT, WorkshopError } from '../lib/kernel/errors.js';
import { LIMITS, cleanText, newParticipantId, parseRoomUrl, PROTOCOL_VERSION } from '../workshop/room/protocol.js';
import { defaultName, joinedRoom, machineName, saveJoinedRoom, send, type JoinedRoom } from '../workshop/room/client.js';
import { main } from './common.js';

const USAGE = 'Usage: npm run join URL [-- --name NAME]   (the URL is the one `npm run room` prints)';
/** Joining is interactive: it may wait longer than a check ever does. */
const JOIN_TIMEOUT_MS = 3000;

main(async () => {
  let parsed;
  try {
    parsed = parseArgs({ args: process.argv.slice(2), allowPositionals: true, options: { name: { type: 'string' } } });
  } catch (error) {
    throw new WorkshopError((error as Error).message, USAGE, EXIT.usage);
  }
  const [url, ...extra] = parsed.positionals;
  if (url === undefined) throw new WorkshopError('which room?', USAGE, EXIT.usage);
  if (extra.length > 0) throw new WorkshopError(`unexpected ${JSON.stringify(extra[0])}`, `${USAGE}. A name with spaces needs quotes: --name "Ada L."`, EXIT.usage);
  const address = parseRoomUrl(url);
  if ('error' in address) throw new WorkshopError(address.error, USAGE, EXIT.usage);
  const rawName = parsed.values.name ?? defaultName();
  const name = cleanText(rawName, LIMITS.nameChars + 1);
  if (name === '') throw new WorkshopError('the name is empty.', 'Give a name the instructor will recognise: --name "Ada L."', EXIT.usage);
  if ([...name].length > LIMITS.nameChars) throw new WorkshopError(`names are at most ${LIMITS.nameChars} characters.`, 'A first name, or a nickname, is plenty.', EXIT.usage);

  // Joining the same room again (a new name, say) keeps the same row on the board.
  const previous = joinedRoom();
  const sameRoom = previous && previous.origin === address.origin && previous.token === address.token;
  const room: JoinedRoom = { ...address, id: sameRoom ? previous.id : newParticipantId(), name };
  const hello = { v: PROTOCOL_VERSION, id: room.id, name, machine: machineName(), step: 0, checks: [] };
  const outcome = await send(room, 'report', JSON.stringify(hello), JOIN_TIMEOUT_MS);
  if (!outcome.ok) {
    const where = address.origin.replace(/^http:\/\//, '');
    const why =
      outcome.status === 404
        ? [`the room at ${where} does not know the code "${address.token}".`, 'Copy the URL again from the projector: the code is the part after the port.']
        : outcome.status === 429
          ? ['the room has had too many requests from this machine.', 'Wait a few seconds and try again.']
          : outcome.status !== undefined
            ? [`the room at ${where} refused to join: ${outcome.reason}.`, 'Ask the instructor (their terminal shows why).']
            : outcome.reason === 'ECONNREFUSED'
              ? [`nothing answers at ${where}.`, 'Is the room open (`npm run room` on the instructor\'s machine)? Is the URL right?']
              : [`the room at ${where} did not answer (${outcome.reason}).`, 'Are you on the same network as the instructor (the same Wi-Fi)? A VM needs bridged networking, or the host to forward the port.'];
    throw new WorkshopError(`could not join: ${why[0]}`, why[1]!, EXIT.runtimeFailed);
  }
  saveJoinedRoom(room);
  console.log(`${chalk.green('✓')} Joined the room at ${room.origin} as ${chalk.bold(name)} (${machineName()}).`);
  console.log(chalk.dim('  From now on `npm run check` sends each result there: the step, the names of the checks and'));
  console.log(chalk.dim('  whether they passed — never your code, its output or your environment. `npm run leave` stops it.'));
  return 0;
});
