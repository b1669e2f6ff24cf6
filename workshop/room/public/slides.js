// The slides: Mermaid diagrams drawn in place (mermaid.js, served by the room
// from node_modules: no network), and the keyboard for the projector:
// ← → previous/next page, b the board, c the contents.
'use strict';

/** @type {{ initialize(config: object): void, run(options: { querySelector: string }): Promise<void> } | undefined} */
// @ts-expect-error -- set by mermaid.js, loaded just before this file
const mermaidLibrary = window.mermaid;

function drawDiagrams() {
  if (!mermaidLibrary) {
    document.body.dataset.mermaid = 'missing';
    return;
  }
  mermaidLibrary.initialize({ startOnLoad: false, securityLevel: 'strict', theme: 'neutral' });
  mermaidLibrary.run({ querySelector: 'pre.mermaid' }).then(
    () => {
      document.body.dataset.mermaid = 'done';
    },
    (/** @type {unknown} */ error) => {
      document.body.dataset.mermaid = 'failed';
      console.error('a diagram could not be drawn:', error);
    },
  );
}

/** @param {string} rel */
function go(rel) {
  const link = document.querySelector(`a[rel="${rel}"]`);
  if (link instanceof HTMLAnchorElement) window.location.href = link.href;
}

document.addEventListener('keydown', (event) => {
  if (event.altKey || event.ctrlKey || event.metaKey) return;
  if (event.key === 'ArrowRight') go('next');
  else if (event.key === 'ArrowLeft') go('prev');
  else if (event.key === 'b') window.location.href = '../';
  else if (event.key === 'c') window.location.href = './';
});

drawDiagrams();
