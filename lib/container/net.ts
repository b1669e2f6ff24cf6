// Network interfaces, the way ip(8) and ifconfig(8) talk to the kernel:
// ioctl(2) requests on a socket, each naming an interface in a struct ifreq.
//
//   struct ifreq {                  (net/if.h; 40 bytes on 64-bit Linux)
//     char  ifr_name[16];           offset 0: "lo", NUL-terminated (IFNAMSIZ = 16)
//     union {                       offset 16: what the request reads or writes,
//       short ifr_flags;            e.g. the interface flags (IFF_UP, ...)
//       ...                         (addresses, mtu, ...: the union is 24 bytes)
//     };
//   };
import { IFF_FLAGS, SIOCGIFFLAGS, SIOCSIFFLAGS, decodeFlags } from '../kernel/constants.js';
import { ioctl } from '../kernel/libc.js';
import { traceNote } from '../kernel/trace.js';

const IFNAMSIZ = 16;
const IFREQ_SIZE = 40;
const IFR_FLAGS_OFFSET = 16;

/** A zeroed struct ifreq naming interface `name`. */
export function ifreq(name: string): Buffer {
  if (Buffer.byteLength(name) >= IFNAMSIZ) throw new Error(`interface names are at most ${IFNAMSIZ - 1} bytes: ${name}`);
  const struct = Buffer.alloc(IFREQ_SIZE); // zero-filled: the name ends with a NUL
  struct.write(name, 0, 'utf8');
  return struct;
}

// ifr_flags is a C short in the machine's byte order: little-endian on x86_64 and arm64.

/** ioctl(SIOCGIFFLAGS): the flags of interface `name`, asked through the socket `fd`. */
export function getInterfaceFlags(fd: number, name: string): number {
  const struct = ifreq(name);
  ioctl(fd, SIOCGIFFLAGS, struct, `{ifr_name=${JSON.stringify(name)}}`);
  const flags = struct.readUInt16LE(IFR_FLAGS_OFFSET); // the kernel wrote them into our Buffer
  traceNote(`  → ifr_flags = ${decodeFlags(flags, IFF_FLAGS)}`);
  return flags;
}

/** ioctl(SIOCSIFFLAGS): set the flags of interface `name` (needs CAP_NET_ADMIN in its network namespace). */
export function setInterfaceFlags(fd: number, name: string, flags: number): void {
  const struct = ifreq(name);
  struct.writeUInt16LE(flags, IFR_FLAGS_OFFSET);
  ioctl(fd, SIOCSIFFLAGS, struct, `{ifr_name=${JSON.stringify(name)}, ifr_flags=${decodeFlags(flags, IFF_FLAGS)}}`);
}
