// The room end to end, as an instructor and three participants use it: the
// instructor's `npm run room`, three copies of the repository that join it
// and run real `npm run check`s (passing and failing), and Debian's Chromium,
// headless, showing the board and the slides. Screenshots go to
// tests/artifacts/ (ignored by git).
//
// Needs /usr/bin/chromium (`apt-get install chromium`; .ci/run installs it).
// Without it this test FAILS, saying so: a skipped browser test would hide a
// broken board.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { after, before, describe, test } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { REPO_ROOT } from '../lib/paths.js';
import { copyOfRepository, outputOf, type Output } from './helpers.js';

const CHROMIUM = process.env.CFS_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = `${REPO_ROOT}/tests/artifacts`;
/** How long the page may take to show what the server knows (a live update arrives in ~100 ms). */
const SHOWS = { timeout: 15_000 };

type Run = Output;

/** `npm run <command> <args>` in `cwd`, the way npm runs it (node cli/launch.mjs cli/<command>.ts). */
function npmRun(cwd: string, command: string, args: string[] = []): Promise<Run> {
  const child = spawn(process.execPath, ['cli/launch.mjs', `cli/${command}.ts`, ...args], { cwd, env: { ...process.env, FORCE_COLOR: '0' } });
  return outputOf(child);
}

/** The text of a participant's row cell, by the participant's name. */
async function cell(page: Page, name: string, column: string): Promise<string> {
  return page.locator('#participants tbody tr', { has: page.locator('td.name', { hasText: name }) }).locator(`td.${column}`).innerText();
}

function row(page: Page, name: string) {
  return page.locator('#participants tbody tr').filter({ has: page.locator('td.name').getByText(name, { exact: true }) });
}

const MISSING = `${CHROMIUM} is missing, so the board cannot be tested in a browser. Install Debian's chromium (apt-get install chromium; .ci/run does) or point CFS_CHROMIUM at a Chromium.`;

// Counted as a failure in the summary (a failing `before` only cancels the tests below).
test('the browser is there: Debian\'s chromium', () => assert.ok(existsSync(CHROMIUM), MISSING));

describe('the room, in a real browser', () => {
  const copies: string[] = [];
  let roomProcess: ChildProcess | undefined;
  let context: BrowserContext | undefined;
  let browserStarting: Promise<BrowserContext> | undefined;
  let profile = '';
  let page: Page;
  let url = '';
  const requests: string[] = [];
  const pageErrors: string[] = [];
  let ada = '';
  let grace = '';
  let linus = '';

  before(async () => {
    assert.ok(existsSync(CHROMIUM), MISSING);
    // The browser starts while the room and the participants get ready.
    profile = mkdtempSync(`${tmpdir()}/cfs-chromium-`);
    browserStarting = chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 720 },
      // As root, Chromium's sandbox cannot start; the network is closed, so nothing may try to reach it.
      args: [
        ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
      ],
    });
    browserStarting.catch(() => {}); // awaited below; a failure to start is reported there
    const roomCopy = copyOfRepository();
    copies.push(roomCopy);
    copyFileSync(`${REPO_ROOT}/WORKSHOP.md`, `${roomCopy}/WORKSHOP.md`); // the slides' source
    // The instructor: a room on a free localhost port; 1 s of no change counts as stuck (10 min in class).
    roomProcess = spawn(process.execPath, ['cli/launch.mjs', 'cli/room.ts', '--host', '127.0.0.1', '--port', '0', '--stuck-after', '1s'], {
      cwd: roomCopy,
      env: { ...process.env, FORCE_COLOR: '0' },
    });
    let output = '';
    url = await new Promise<string>((resolve, reject) => {
      roomProcess!.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        output += chunk;
        const join = /npm run join (\S+) -- --name/.exec(output);
        if (join) resolve(join[1]!);
      });
      roomProcess!.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
      roomProcess!.on('exit', (status) => reject(new Error(`npm run room exited (${status}):\n${output}`)));
    });
    // Three participants, each in a copy of the repository, join by name.
    [ada, grace, linus] = [copyOfRepository(), copyOfRepository(), copyOfRepository()];
    copies.push(ada, grace, linus);
    const joins = await Promise.all([
      npmRun(ada, 'join', [url, '--name', 'Ada']),
      npmRun(grace, 'join', [url, '--name', 'Grace']),
      npmRun(linus, 'join', [url, '--name', '<b>Linus</b>']),
    ]);
    for (const join of joins) assert.equal(join.status, 0, join.stdout + join.stderr);
    assert.match(joins[0]!.stdout, /✓ Joined the room at http:\/\/127\.0\.0\.1:\d+ as Ada/);

    context = await browserStarting;
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(SHOWS.timeout);
    page.on('request', (request) => requests.push(request.url()));
    page.on('pageerror', (error) => pageErrors.push(String(error)));
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(message.text());
    });
    mkdirSync(ARTIFACTS, { recursive: true });
  });

  after(async () => {
    await (context ?? (await browserStarting?.catch(() => undefined)))?.close();
    roomProcess?.kill('SIGTERM');
    for (const copy of copies) rmSync(copy, { recursive: true, force: true });
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  test('the board shows each participant\'s checks as they run them, and who is stuck', async () => {
    await page.goto(`${url}/`);
    await page.locator('#participants tbody tr').first().waitFor(SHOWS); // the three "joined" rows
    // Ada did step 1, Grace did not touch it, Linus did step 1 and checks step 2 untouched.
    copyFileSync(`${ada}/solutions/01-exec.ts`, `${ada}/steps/01-exec.ts`);
    copyFileSync(`${linus}/solutions/01-exec.ts`, `${linus}/steps/01-exec.ts`);
    const [adaCheck, graceCheck, linusCheck] = await Promise.all([npmRun(ada, 'check', ['1']), npmRun(grace, 'check', ['1']), npmRun(linus, 'check', ['2'])]);
    assert.equal(adaCheck.status, 0, adaCheck.stdout + adaCheck.stderr);
    assert.equal(graceCheck.status, 1, graceCheck.stdout + graceCheck.stderr);
    assert.equal(linusCheck.status, 1, linusCheck.stdout + linusCheck.stderr);
    for (const check of [adaCheck, graceCheck, linusCheck]) assert.doesNotMatch(check.stdout, /did not take this result/);

    // No reload: the rows arrive by the event stream.
    await page.evaluate(() => Object.assign(window, { sameDocument: true }));
    await page.waitForFunction(() => document.querySelectorAll('#participants tbody tr[data-status="joined"]').length === 0, undefined, SHOWS);
    assert.equal(await page.locator('#participants tbody tr').count(), 3);
    assert.equal(await page.locator('#participants td.name b').count(), 0, 'a name was put into the page as HTML');
    assert.equal(await row(page, 'Ada').getAttribute('data-status'), 'done');
    assert.equal(await cell(page, 'Ada', 'step'), '1 · exec');
    assert.equal(await cell(page, 'Ada', 'failing'), '✓ all pass');
    assert.equal(await row(page, 'Ada').locator('.check.pass').count(), 4);
    assert.equal(await row(page, 'Grace').getAttribute('data-status'), 'failing');
    assert.equal(await cell(page, 'Grace', 'failing'), '[step 1] runs the command and passes its output through');
    assert.equal(await row(page, 'Grace').locator('.check.fail').count(), 4);
    assert.equal(await cell(page, '<b>Linus</b>', 'step'), '2 · UTS namespace');
    assert.match(await cell(page, '<b>Linus</b>', 'failing'), /^\[step 2\] /);
    assert.equal(await cell(page, 'Ada', 'machine'), await cell(page, 'Grace', 'machine'));
    // The histogram: two at step 1, one at step 2.
    assert.equal(await page.locator('#histogram .bar-column[data-step="1"] .total').innerText(), '2');
    assert.equal(await page.locator('#histogram .bar-column[data-step="2"] .total').innerText(), '1');
    // Failing with no change for longer than --stuck-after: highlighted; done never is.
    await page.locator('#participants tbody tr.stuck').nth(1).waitFor(SHOWS);
    assert.equal(await row(page, 'Grace').getAttribute('data-stuck'), 'true');
    assert.equal(await row(page, 'Ada').getAttribute('data-stuck'), 'false');
    assert.match(await cell(page, 'Grace', 'age'), /stuck > 1 s/);
    assert.match(await page.locator('#summary').innerText(), /^3 participants · 1 with their step done · 2 stuck$/);
    await page.screenshot({ path: `${ARTIFACTS}/room-board.png`, fullPage: true });

    // Grace fixes her step: her row turns green, live, and is no longer stuck.
    copyFileSync(`${grace}/solutions/01-exec.ts`, `${grace}/steps/01-exec.ts`);
    assert.equal((await npmRun(grace, 'check', ['1'])).status, 0);
    await row(page, 'Grace').and(page.locator('[data-status="done"]')).waitFor(SHOWS);
    assert.equal(await row(page, 'Grace').getAttribute('data-stuck'), 'false');
    assert.equal(await page.evaluate(() => 'sameDocument' in window), true, 'the page was reloaded');

    // Linus leaves: his row goes, and his next check reports nowhere.
    const left = await npmRun(linus, 'leave');
    assert.match(left.stdout, /✓ Left the room/);
    await page.waitForFunction(() => document.querySelectorAll('#participants tbody tr').length === 2, undefined, SHOWS);
    assert.equal(existsSync(`${linus}/.workshop/room.json`), false);
  });

  test('a wrong room code is refused, saying so', async () => {
    const wrong = url.replace(/[a-z2-9]{10}$/, 'zzzzzzzzzz');
    const join = await npmRun(grace, 'join', [wrong, '--name', 'Mallory']);
    assert.equal(join.status, 125);
    assert.match(join.stderr, /could not join: the room at 127\.0\.0\.1:\d+ does not know the code "zzzzzzzzzz"/);
    assert.equal(await page.locator('#participants tbody tr', { hasText: 'Mallory' }).count(), 0);
  });

  test('the slides: the guide\'s chapter, its Mermaid diagram drawn, the step\'s diff beside it', async () => {
    await page.goto(`${url}/slides/1`);
    await page.waitForFunction(() => document.body.dataset.mermaid !== 'pending', undefined, SHOWS);
    assert.equal(await page.locator('body').getAttribute('data-mermaid'), 'done');
    assert.ok((await page.locator('pre.mermaid svg').count()) >= 1, 'no diagram was drawn');
    assert.match(await page.locator('article.guide h2').innerText(), /^Step 1 — exec/);
    assert.match(await page.locator('aside.step-diff').innerText(), /\+\s+execvp\(container\.command\[0\], container\.command\);/);
    await page.screenshot({ path: `${ARTIFACTS}/room-slides-1.png` });
    await page.keyboard.press('ArrowRight');
    await page.waitForURL(/\/slides\/2$/, SHOWS);
    assert.match(await page.locator('aside.step-diff').innerText(), /\+\s+unshare\(CLONE_NEWUTS\);/);
  });

  test('the pages load nothing from anywhere but the room, without errors', () => {
    const origin = new URL(url).origin;
    const elsewhere = requests.filter((address) => !address.startsWith(`${origin}/`) && !address.startsWith('data:'));
    assert.deepEqual(elsewhere, []);
    assert.ok(requests.some((address) => address.endsWith('/assets/mermaid.js')), 'mermaid.js came from the room');
    assert.deepEqual(pageErrors, []);
  });
});
