import { randomFillSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ImageWriter, SwapDevice, validateImage } from '../src/image/index.ts';
import { sha256File, tempSwapPath } from './helpers.ts';

const BUILD = 'ab'.repeat(32);

function writeImage(path: string, data: Uint8Array, pfns: Uint32Array, asyncRuns: boolean): Promise<void> | void {
  const dev = SwapDevice.ensure(path, 64 << 20);
  const w = new ImageWriter(dev, { pfns, buildId: BUILD, ramBytes: 32 << 20, frameCount: 8192, strategy: 'test', context: { address: 0x1000, bytes: new Uint8Array(84) }, durable: false });
  const finish = () => {
    w.commit();
    dev.close();
  };
  if (!asyncRuns) {
    w.writePages(0, data);
    return finish();
  }
  // Two runs: a long one (overlapped path) and a short tail (staged path).
  const split = pfns.length - 3;
  return w.writePagesAsync(0, data.subarray(0, split * 4096)).then(() => w.writePagesAsync(split, data.subarray(split * 4096))).then(finish);
}

describe('ImageWriter.writePagesAsync', () => {
  it('writes exactly the file writePages writes, CRCs included', async () => {
    const n = 5000; // ~20 MiB: several 8 MiB overlap chunks
    const pfns = Uint32Array.from({ length: n }, (_, i) => 300 + i);
    const data = randomFillSync(new Uint8Array(n * 4096));
    const a = tempSwapPath('sync');
    const b = tempSwapPath('async');
    await writeImage(a, data, pfns, false);
    await writeImage(b, data, pfns, true);
    expect(sha256File(b)).toBe(sha256File(a));
    const v = validateImage(b, { buildId: BUILD, ramBytes: 32 << 20 });
    expect(v.pfns).toEqual(pfns);
  });
});
