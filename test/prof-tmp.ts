import * as fs from 'node:fs';
import { applyLayer } from '../supervisor/diff/index';
async function main(): Promise<void> {
  const blob = process.argv[2]!;
  for (let i = 0; i < 5; i++) {
    const dir = fs.mkdtempSync('/tmp/imgsp/apply-');
    const t0 = Date.now();
    await applyLayer(fs.createReadStream(blob), dir, { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', whiteouts: 'overlay' });
    console.log('apply ms', Date.now() - t0);
    fs.rmSync(dir, { recursive: true });
  }
}
void main();
