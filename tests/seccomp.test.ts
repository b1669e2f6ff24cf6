// Step 9's filter on its own, for both architectures: the BPF program that
// lib/container/seccomp.ts lays out is run here by a small classic-BPF
// interpreter (the instructions it uses, as the kernel runs them) on
// struct seccomp_data of x86_64 and arm64 syscalls. The containers of
// tests/step-9.test.ts then show the real kernel agreeing on this machine.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  AUDIT_ARCH_AARCH64,
  AUDIT_ARCH_ARM,
  AUDIT_ARCH_I386,
  AUDIT_ARCH_X86_64,
  BPF_ABS,
  BPF_JEQ,
  BPF_JGE,
  BPF_JMP,
  BPF_JSET,
  BPF_K,
  BPF_LD,
  BPF_RET,
  BPF_W,
  CLONE_NEWNS,
  CLONE_NEWUSER,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_ERRNO,
  SECCOMP_RET_KILL_PROCESS,
  SYSCALLS,
  X32_SYSCALL_BIT,
  syscallNumberOn,
} from '../lib/kernel/constants.js';
import { DENIED_SYSCALLS, containerFilter, filterProgram } from '../lib/container/seccomp.js';
import { syscallProbe } from '../workshop/syscall-probe.js';

interface Call {
  nr: number;
  arch: number;
  args?: number[];
}

/** Run a classic-BPF seccomp program on one syscall, as the kernel would; returns the verdict. */
function verdictOf(program: Buffer, call: Call): number {
  const data = Buffer.alloc(64); // struct seccomp_data
  data.writeInt32LE(call.nr, 0);
  data.writeUInt32LE(call.arch, 4);
  (call.args ?? []).forEach((arg, index) => data.writeBigUInt64LE(BigInt.asUintN(64, BigInt(arg)), 16 + 8 * index));
  const count = program.length / 8;
  let a = 0;
  for (let pc = 0; pc < count; ) {
    const code = program.readUInt16LE(pc * 8);
    const [jt, jf, k] = [program.readUInt8(pc * 8 + 2), program.readUInt8(pc * 8 + 3), program.readUInt32LE(pc * 8 + 4)];
    const jump = (taken: boolean) => (pc += 1 + (taken ? jt : jf));
    if (code === (BPF_LD | BPF_W | BPF_ABS)) {
      assert.ok(k % 4 === 0 && k < 64, `load at offset ${k}`);
      a = data.readUInt32LE(k);
      pc++;
    } else if (code === (BPF_JMP | BPF_JEQ | BPF_K)) jump(a === k);
    else if (code === (BPF_JMP | BPF_JGE | BPF_K)) jump(a >= k);
    else if (code === (BPF_JMP | BPF_JSET | BPF_K)) jump((a & k) !== 0);
    else if (code === (BPF_RET | BPF_K)) return k;
    else assert.fail(`instruction ${pc}: unexpected code 0x${code.toString(16)}`);
    assert.ok(pc <= count, `instruction ${pc}: a jump past the end`);
  }
  assert.fail('the program ends without a verdict (the kernel refuses such a program)');
}

const EPERM = SECCOMP_RET_ERRNO | 1;
const ENOSYS = SECCOMP_RET_ERRNO | 38;
const THREAD_FLAGS = 0x3d0f00; // CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID: pthread_create
const SIGCHLD = 17;

const ARCHES = [
  { arch: 'x64', audit: AUDIT_ARCH_X86_64, foreign: AUDIT_ARCH_I386, allowed: ['read', 'write', 'execve', 'getpid', 'ptrace', 'exit_group'] },
  { arch: 'arm64', audit: AUDIT_ARCH_AARCH64, foreign: AUDIT_ARCH_ARM, allowed: ['read', 'write', 'execve', 'getpid', 'ptrace', 'exit_group'] },
] as const;
// Ordinary syscalls that are not in the constants table, by number (asm/unistd_64.h, asm-generic/unistd.h).
const ORDINARY: Record<string, { x64: number; arm64: number }> = {
  read: { x64: 0, arm64: 63 },
  write: { x64: 1, arm64: 64 },
  execve: { x64: 59, arm64: 221 },
  ptrace: { x64: 101, arm64: 117 },
  getpid: { x64: 39, arm64: 172 },
  exit_group: { x64: 231, arm64: 94 },
};

for (const { arch, audit, foreign, allowed } of ARCHES) {
  describe(`the container's seccomp filter on ${arch}`, () => {
    const program = filterProgram(containerFilter(arch));
    const nr = (name: string) => {
      const number = syscallNumberOn(name, arch);
      assert.ok(number !== undefined, `${name} on ${arch}`);
      return number;
    };

    test('fits the kernel: at most 4096 instructions, every jump inside the program', () => {
      assert.ok(program.length / 8 <= 4096);
      for (let pc = 0; pc < program.length / 8; pc++) {
        const code = program.readUInt16LE(pc * 8);
        if ((code & 0x07) === BPF_JMP) assert.ok(pc + 1 + Math.max(program.readUInt8(pc * 8 + 2), program.readUInt8(pc * 8 + 3)) < program.length / 8);
      }
    });

    test('another ABI is killed, whatever the syscall', () => {
      for (const number of [0, 20, nr('getpid'), nr('keyctl')]) assert.equal(verdictOf(program, { nr: number, arch: foreign }), SECCOMP_RET_KILL_PROCESS);
      if (arch === 'x64') assert.equal(verdictOf(program, { nr: X32_SYSCALL_BIT | 39, arch: audit }), SECCOMP_RET_KILL_PROCESS, 'x32 getpid');
    });

    test('every denied syscall this architecture has fails with EPERM; clone3 with ENOSYS', () => {
      const denied = DENIED_SYSCALLS.map(([name]) => name).filter((name) => syscallNumberOn(name, arch) !== undefined);
      assert.ok(denied.length >= 45, `${denied.length} denied`);
      for (const name of denied) assert.equal(verdictOf(program, { nr: nr(name), arch: audit }), EPERM, name);
      assert.equal(verdictOf(program, { nr: nr('clone3'), arch: audit }), ENOSYS);
    });

    test('clone: with a CLONE_NEW* flag EPERM; fork and thread creation allowed', () => {
      const clone = nr('clone');
      for (const flags of [CLONE_NEWUSER | SIGCHLD, CLONE_NEWNS, THREAD_FLAGS | CLONE_NEWUSER]) {
        assert.equal(verdictOf(program, { nr: clone, arch: audit, args: [flags] }), EPERM, `flags 0x${flags.toString(16)}`);
      }
      for (const flags of [SIGCHLD, THREAD_FLAGS, 0]) {
        assert.equal(verdictOf(program, { nr: clone, arch: audit, args: [flags] }), SECCOMP_RET_ALLOW, `flags 0x${flags.toString(16)}`);
      }
    });

    test('socket: AF_VSOCK refused, AF_INET and AF_UNIX allowed', () => {
      assert.equal(verdictOf(program, { nr: nr('socket'), arch: audit, args: [40, 1, 0] }), EPERM);
      for (const domain of [1, 2, 10]) assert.equal(verdictOf(program, { nr: nr('socket'), arch: audit, args: [domain, 1, 0] }), SECCOMP_RET_ALLOW);
    });

    test('ordinary syscalls are allowed', () => {
      for (const name of allowed) assert.equal(verdictOf(program, { nr: ORDINARY[name]![arch], arch: audit }), SECCOMP_RET_ALLOW, name);
      assert.equal(verdictOf(program, { nr: 999, arch: audit }), SECCOMP_RET_ALLOW, 'a number no rule names');
    });
  });
}

test('every syscall the filter names has a number on x86_64 or arm64', () => {
  for (const [name] of DENIED_SYSCALLS) {
    const numbers = SYSCALLS[name];
    assert.ok(numbers && (numbers.x64 !== undefined || numbers.arm64 !== undefined), name);
  }
});

describe('syscall probes (the step-9 checks run them in the container)', { skip: process.arch !== 'x64' && process.arch !== 'arm64' }, () => {
  test("exit with the syscall's errno, 0 when it worked", () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfs-probe-'));
    try {
      const run = (name: string, elf: Buffer) => {
        const path = join(dir, name);
        writeFileSync(path, elf);
        chmodSync(path, 0o755);
        return spawnSync(path).status;
      };
      assert.equal(run('getpid', syscallProbe(syscallNumberOn('getpid')!)), 0);
      assert.equal(run('unknown', syscallProbe(999)), 38, 'ENOSYS');
      assert.equal(run('clone3', syscallProbe(syscallNumberOn('clone3')!, [0, 0])), 22, 'EINVAL: clone3 with no arguments');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
