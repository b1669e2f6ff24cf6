// A syscall probe for the checks of step 9: a tiny static program (an ELF
// file of ~170 bytes, no libc, no loader) that makes one syscall with the given
// numbers and exits with its errno, or 0 when the syscall worked.
//
// The container's rootfs may have no program that calls keyctl, clone3 or
// unshare(CLONE_NEWUSER) (an imported Alpine or busybox one certainly does not),
// so the check writes this one into the container with the shell's `printf`
// and runs it. Its exit status is the kernel's answer, untouched by any libc
// fallback or error message wording.
//
//   ELF header (64 bytes) | one PT_LOAD program header (56 bytes) | code
//   the code: syscall(nr, args...); exit_group(result < 0 ? -result : 0)

const BASE = 0x400000; // where the kernel maps the file
const HEADERS = 64 + 56;

/**
 * The machine code of the probe, for x86_64. With `i386`, the syscall goes
 * through `int 0x80`, the 32-bit ABI every x86_64 kernel with IA32 emulation
 * also accepts: same process, other syscall numbers (no arguments then).
 */
function x64Code(nr: number, args: readonly number[], i386: boolean): Buffer {
  const bytes: number[] = [];
  const imm32 = (value: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(value >>> 0);
    bytes.push(...b);
  };
  bytes.push(0xb8); imm32(nr); // mov eax, nr
  // The argument registers, in order: rdi, rsi, rdx, r10, r8, r9 (mov r32, imm32 zero-extends).
  const movs = [[0xbf], [0xbe], [0xba], [0x41, 0xba], [0x41, 0xb8], [0x41, 0xb9]];
  args.forEach((arg, index) => {
    bytes.push(...(movs[index] ?? []));
    imm32(arg);
  });
  bytes.push(...(i386 ? [0xcd, 0x80] : [0x0f, 0x05])); // int 0x80, or syscall
  bytes.push(0x48, 0xf7, 0xd8); // neg rax
  bytes.push(0x31, 0xff); // xor edi, edi
  bytes.push(0x48, 0x85, 0xc0); // test rax, rax
  bytes.push(0x48, 0x0f, 0x4f, 0xf8); // cmovg rdi, rax: the errno when the syscall failed, else 0
  bytes.push(0xb8); imm32(231); // mov eax, 231 (exit_group)
  bytes.push(0x0f, 0x05); // syscall
  return Buffer.from(bytes);
}

/** The machine code of the probe, for arm64. */
function arm64Code(nr: number, args: readonly number[]): Buffer {
  const words: number[] = [];
  // movz xD, #low16; movk xD, #high16, lsl #16
  const move = (register: number, value: number) => {
    const v = value >>> 0;
    words.push(0xd2800000 | ((v & 0xffff) << 5) | register, 0xf2a00000 | ((v >>> 16) << 5) | register);
  };
  move(8, nr); // x8: the syscall number
  args.forEach((arg, index) => move(index, arg)); // x0..x5: the arguments
  words.push(0xd4000001); // svc #0
  words.push(0xcb0003e1); // neg x1, x0
  words.push(0xf100003f); // cmp x1, #0
  words.push(0x9a9fc020); // csel x0, x1, xzr, gt: the errno when the syscall failed, else 0
  move(8, 94); // exit_group
  words.push(0xd4000001); // svc #0
  const code = Buffer.alloc(words.length * 4);
  words.forEach((word, index) => code.writeUInt32LE(word >>> 0, index * 4));
  return code;
}

/**
 * A static ELF executable that makes syscall `nr` with `args` (up to 6, 32-bit
 * each) and exits with its errno. `i386`: through x86_64's 32-bit ABI, without arguments.
 */
export function syscallProbe(nr: number, args: readonly number[] = [], arch: string = process.arch, { i386 = false } = {}): Buffer {
  if (args.length > 6) throw new Error('a syscall has at most 6 arguments');
  if (i386 && (arch !== 'x64' || args.length > 0)) throw new Error('an i386 probe runs on x86_64, without arguments');
  const machine = arch === 'x64' ? 62 : arch === 'arm64' ? 183 : undefined;
  if (machine === undefined) throw new Error(`no syscall probe for architecture ${arch}`);
  const code = arch === 'x64' ? x64Code(nr, args, i386) : arm64Code(nr, args);
  const size = HEADERS + code.length;
  const elf = Buffer.alloc(size);
  // ELF header: 64-bit, little-endian, version 1, an executable for `machine`.
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]).copy(elf, 0);
  elf.writeUInt16LE(2, 16); // e_type: ET_EXEC
  elf.writeUInt16LE(machine, 18); // e_machine
  elf.writeUInt32LE(1, 20); // e_version
  elf.writeBigUInt64LE(BigInt(BASE + HEADERS), 24); // e_entry: the code, right after the headers
  elf.writeBigUInt64LE(64n, 32); // e_phoff: the program header follows this header
  elf.writeUInt16LE(64, 52); // e_ehsize
  elf.writeUInt16LE(56, 54); // e_phentsize
  elf.writeUInt16LE(1, 56); // e_phnum
  // Program header: map the whole file at BASE, readable and executable.
  elf.writeUInt32LE(1, 64); // p_type: PT_LOAD
  elf.writeUInt32LE(5, 68); // p_flags: PF_R | PF_X
  elf.writeBigUInt64LE(0n, 72); // p_offset
  elf.writeBigUInt64LE(BigInt(BASE), 80); // p_vaddr
  elf.writeBigUInt64LE(BigInt(BASE), 88); // p_paddr
  elf.writeBigUInt64LE(BigInt(size), 96); // p_filesz
  elf.writeBigUInt64LE(BigInt(size), 104); // p_memsz
  elf.writeBigUInt64LE(0x1000n, 112); // p_align
  code.copy(elf, HEADERS);
  return elf;
}

/** A `printf` format that writes `bytes` exactly, every byte as an octal escape (POSIX printf, any shell). */
export function printfFormat(bytes: Buffer): string {
  return [...bytes].map((byte) => `\\${byte.toString(8).padStart(3, '0')}`).join('');
}
