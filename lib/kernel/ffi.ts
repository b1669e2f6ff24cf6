// Loading ffi-rs, quickly.
//
// ffi-rs picks its native binary for glibc or musl by asking Node for a full
// diagnostic report (process.report.getReport()), which costs ~10 ms, on every
// process start, twice per container. We answer that one question ourselves
// while it loads. It is loaded relative to the repository so that it is found
// from the compile cache too (workshop/compile.mjs).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { REPO_ROOT } from '../paths.js';

/** musl (Alpine) ships its libc as the dynamic loader; glibc's is libc.so.6. */
export const LIBC_PATH = ((): string => {
  const musl = `/lib/ld-musl-${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}.so.1`;
  return existsSync(musl) ? musl : 'libc.so.6';
})();

function loadFfiRs(): typeof import('ffi-rs') {
  const report = process.report as { getReport: () => object };
  const getReport = report.getReport;
  const glibcVersionRuntime = LIBC_PATH === 'libc.so.6' ? 'glibc' : undefined;
  report.getReport = () => ({ header: { glibcVersionRuntime } });
  try {
    return createRequire(`${REPO_ROOT}/package.json`)('ffi-rs');
  } finally {
    report.getReport = getReport;
  }
}

export const { DataType, define, load, open } = loadFfiRs();
