// npm run rootfs [-- --from FILE.tar[.gz]] [--target DIR] [--force] — see rootfs-builder/cli.ts.
import { main as rootfs } from '../rootfs-builder/cli.js';

void rootfs(process.argv.slice(2)).then((code) => process.exit(code));
