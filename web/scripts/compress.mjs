// Post-build: writes a .gz and a .br beside every compressible file of the build (the node serves
// them when Accept-Encoding allows: node/api/static_files.h) and prints the JavaScript's gzip size,
// failing when it is over the budget.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const BUDGET_GZIP_JS = 200 * 1024;
const COMPRESSIBLE = /\.(html|js|mjs|css|json|svg|txt|map|webmanifest)$/;
const root = process.argv[2] ?? 'dist';

function* walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* walk(p);
    else yield p;
  }
}

let jsGzip = 0;
let jsRaw = 0;
for (const file of [...walk(root)]) {
  if (!COMPRESSIBLE.test(file)) continue;
  const data = readFileSync(file);
  const gz = gzipSync(data, { level: 9 });
  const br = brotliCompressSync(data, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 11,
      [constants.BROTLI_PARAM_SIZE_HINT]: data.length,
    },
  });
  // A compressed copy that is not smaller is useless: the node then sends the plain file.
  if (gz.length < data.length) writeFileSync(file + '.gz', gz);
  if (br.length < data.length) writeFileSync(file + '.br', br);
  if (/\.m?js$/.test(file)) {
    jsGzip += gz.length;
    jsRaw += data.length;
    console.log(`${relative(root, file)}: ${(data.length / 1024).toFixed(1)} KiB, gzip ${(gz.length / 1024).toFixed(1)} KiB, brotli ${(br.length / 1024).toFixed(1)} KiB`);
  }
}
console.log(`JavaScript total: ${(jsRaw / 1024).toFixed(1)} KiB, gzip ${(jsGzip / 1024).toFixed(1)} KiB (budget ${BUDGET_GZIP_JS / 1024} KiB)`);
if (jsGzip > BUDGET_GZIP_JS) {
  console.error('the JavaScript bundle is over its gzip budget');
  process.exit(1);
}
