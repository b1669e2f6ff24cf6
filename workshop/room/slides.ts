// WORKSHOP.md as pages for the projector: one page per chapter (`## ...`),
// the steps at /slides/1 … /slides/8, Mermaid diagrams left for mermaid.js
// (served from node_modules) to draw in the browser, and each step's diff
// beside its text — the same words the participants read, on the wall.
import { Marked, type Tokens } from 'marked';
import { readFileSync, statSync } from 'node:fs';
import { STEPS } from '../steps.js';
import { compactDiff, plainSolutionOf, sideBySide, type CompactDiff, type SideBySideRow } from '../step-diff.js';

export interface GuidePage {
  /** The URL's last part: "4" for step 4, the heading's slug otherwise ("timing-plan"). */
  id: string;
  title: string;
  /** The step this chapter is about, if it is one. */
  step?: number;
  /** The chapter, as HTML. */
  html: string;
}

export interface Guide {
  /** The text above the first chapter, as HTML (the index page shows it). */
  intro: string;
  pages: GuidePage[];
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ESCAPES[char]!);
}

/** GitHub's heading anchors: "Step 1 — exec" → "step-1--exec". */
export function slug(text: string): string {
  return text
    .toLowerCase()
    .replace(/<[^>]*>/g, '')
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

/** The plain text of inline tokens (for slugs and titles). */
function plainText(tokens: readonly Tokens.Generic[] | undefined): string {
  return (tokens ?? []).map((token) => (token.tokens ? plainText(token.tokens) : typeof token.text === 'string' ? token.text : '')).join('');
}

/** Split the guide into chapters and render each; links between chapters point at their pages. */
export function parseGuide(source: string): Guide {
  const lexer = new Marked();
  const tokens = lexer.lexer(source);
  // First pass: which page each chapter is, and where every heading's anchor lives.
  type Chapter = { id: string; title: string; step?: number; tokens: Tokens.Generic[] };
  const intro: Tokens.Generic[] = [];
  const chapters: Chapter[] = [];
  const anchors = new Map<string, string>();
  const seen = new Map<string, number>();
  const anchorOf = (text: string): string => {
    const base = slug(text);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    return count === 0 ? base : `${base}-${count}`;
  };
  const headingIds = new WeakMap<object, string>();
  for (const token of tokens as Tokens.Generic[]) {
    if (token.type === 'heading') {
      const text = plainText(token.tokens);
      const anchor = anchorOf(text);
      headingIds.set(token, anchor);
      if (token.depth === 2) {
        const step = /^Step (\d+)\b/.exec(text);
        chapters.push({ id: step ? step[1]! : anchor, title: text, ...(step ? { step: Number(step[1]) } : {}), tokens: [] });
      }
      if (token.depth >= 2) anchors.set(anchor, chapters[chapters.length - 1]!.id);
    }
    if (token.type === 'hr') continue; // chapters are pages: no rules between them
    (chapters.length > 0 ? chapters[chapters.length - 1]!.tokens : intro).push(token);
  }
  const marked = new Marked({
    renderer: {
      heading(token) {
        const id = headingIds.get(token) ?? slug(plainText(token.tokens));
        return `<h${token.depth} id="${escapeHtml(id)}">${this.parser.parseInline(token.tokens)}</h${token.depth}>\n`;
      },
      code(token) {
        if (token.lang === 'mermaid') return `<pre class="mermaid">${escapeHtml(token.text)}</pre>\n`;
        return `<pre><code>${escapeHtml(token.text)}</code></pre>\n`;
      },
      link(token) {
        const text = this.parser.parseInline(token.tokens);
        if (token.href.startsWith('#')) {
          const page = anchors.get(token.href.slice(1));
          return page ? `<a href="./${escapeHtml(page)}${escapeHtml(token.href)}">${text}</a>` : text;
        }
        // Other pages of the repository (README.md) are not served; the web is not there offline, but a link does no harm.
        if (/^https?:\/\//.test(token.href)) return `<a href="${escapeHtml(token.href)}" rel="noreferrer">${text}</a>`;
        return text;
      },
      html(token) {
        return escapeHtml(token.text); // the guide is text: no raw HTML on the wall
      },
    },
  });
  const render = (list: Tokens.Generic[]): string => marked.parser(list as Parameters<typeof marked.parser>[0]);
  return {
    intro: render(intro),
    pages: chapters.map((chapter) => ({ id: chapter.id, title: chapter.title, ...(chapter.step ? { step: chapter.step } : {}), html: render(chapter.tokens) })),
  };
}

let cached: { file: string; mtimeMs: number; size: number; guide: Guide } | undefined;

/** The guide in `file`, parsed again only when the file changed (an instructor may fix a typo mid-session). */
export function loadGuide(file: string): Guide {
  const { mtimeMs, size } = statSync(file);
  if (!cached || cached.file !== file || cached.mtimeMs !== mtimeMs || cached.size !== size) {
    cached = { file, mtimeMs, size, guide: parseGuide(readFileSync(file, 'utf8')) };
  }
  return cached.guide;
}

function diffLineHtml(kind: string, sign: string, text: string): string {
  return `<span class="line ${kind}">${escapeHtml(`${sign} ${text}`)}</span>`;
}

/** The compact diff as HTML: the same lines `npm run diff N -- --compact` prints. */
export function compactDiffHtml(diff: CompactDiff): string {
  const lines: string[] = [];
  for (const { module, added, removed } of diff.imports) {
    if (added.length > 0) lines.push(diffLineHtml('add', '+', `import { ${added.join(', ')} } from '${module}'`));
    if (removed.length > 0) lines.push(diffLineHtml('remove', '-', `import { ${removed.join(', ')} } from '${module}'`));
  }
  for (const hunk of diff.hunks) {
    lines.push(`<span class="line where">@ ${escapeHtml(hunk.where)}</span>`);
    const indent = Math.min(...hunk.lines.map((line) => line.text.length - line.text.trimStart().length));
    for (const { kind, text } of hunk.lines) {
      lines.push(diffLineHtml(kind, kind === 'add' ? '+' : kind === 'remove' ? '-' : ' ', `  ${text.slice(indent)}`));
    }
  }
  return `<pre class="diff compact">${lines.join('')}</pre>`;
}

/** The whole file's diff, old on the left and new on the right. */
export function sideBySideHtml(rows: readonly SideBySideRow[], oldName: string, newName: string): string {
  const cell = (side: SideBySideRow['left'], kind: string): string =>
    side ? `<td class="n">${side.number}</td><td class="${kind}">${escapeHtml(side.text)}</td>` : '<td class="n"></td><td class="empty"></td>';
  const body = rows
    .map((row) => {
      if (row.kind === 'gap') return '<tr class="gap"><td colspan="4">⋯</td></tr>';
      const leftKind = row.kind === 'same' ? 'same' : 'remove';
      const rightKind = row.kind === 'same' ? 'same' : 'add';
      return `<tr>${cell(row.left, leftKind)}${cell(row.right, rightKind)}</tr>`;
    })
    .join('\n');
  return `<table class="diff side-by-side"><colgroup><col class="n"><col><col class="n"><col></colgroup><thead><tr><th colspan="2">${escapeHtml(oldName)}</th><th colspan="2">${escapeHtml(newName)}</th></tr></thead><tbody>\n${body}\n</tbody></table>`;
}

/** Step `number`'s diff: the compact view (beside the text) and the whole file side by side (below it). */
export function stepDiffHtml(number: number): { compact: string; whole: string } {
  const step = STEPS.find((s) => s.number === number);
  if (!step) return { compact: '', whole: '' };
  const previous = STEPS.find((s) => s.number === number - 1);
  const oldSource = plainSolutionOf(number - 1);
  const newSource = plainSolutionOf(number);
  const oldName = previous ? `solutions/${previous.stem}.ts` : '(nothing)';
  const newName = `solutions/${step.stem}.ts`;
  return {
    compact: [
      `<h3>What step ${number} adds <small>npm run diff ${number} -- --compact</small></h3>`,
      compactDiffHtml(compactDiff(oldSource, newSource)),
      '<p class="more"><a href="#whole-file">the whole file, side by side ↓</a></p>',
    ].join('\n'),
    whole: [
      `<section class="whole-file" id="whole-file"><h3>The whole file, side by side: ${escapeHtml(oldName)} → ${escapeHtml(newName)}</h3>`,
      sideBySideHtml(sideBySide(oldSource, newSource), oldName, newName),
      '</section>',
    ].join('\n'),
  };
}

/** A complete slide page (or the index, when `page` is undefined). */
export function slidePage(guide: Guide, page: GuidePage | undefined): string {
  const index = page ? guide.pages.indexOf(page) : -1;
  const previous = page ? (index > 0 ? `./${guide.pages[index - 1]!.id}` : './') : undefined;
  const next = index + 1 < guide.pages.length ? `./${guide.pages[index + 1]!.id}` : undefined;
  const title = page ? page.title : 'Containers from scratch — the workshop';
  const nav = [
    previous ? `<a href="${escapeHtml(previous)}" rel="prev">← previous</a>` : '<span></span>',
    '<a href="./">contents</a>',
    '<a href="../">the board</a>',
    next ? `<a href="${escapeHtml(next)}" rel="next">next →</a>` : '<span></span>',
  ].join('\n');
  const contents = `<ol class="contents">${guide.pages.map((p) => `<li><a href="./${escapeHtml(p.id)}">${escapeHtml(p.title)}</a></li>`).join('')}</ol>`;
  const main = page
    ? page.step
      ? (({ compact, whole }) => `<main class="slide with-diff"><article class="guide">${page.html}</article><aside class="step-diff">${compact}</aside></main>\n${whole}`)(stepDiffHtml(page.step))
      : `<main class="slide"><article class="guide">${page.html}</article></main>`
    : `<main class="slide"><article class="guide">${guide.intro}${contents}</article></main>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="../assets/room.css">
</head>
<body class="slides" data-mermaid="pending">
<nav class="slide-nav">${nav}</nav>
${main}
<script src="../assets/mermaid.js"></script>
<script src="../assets/slides.js"></script>
</body>
</html>
`;
}
