import type { CommitResult, ImageWriter } from '../image/index.ts';
import type { Progress } from '../metrics/progress.ts';

/**
 * Feeds pages to an image writer with a progress line, then commits (signature last).
 * `produce` calls `write(firstIndex, bytes)` with runs of whole pages in any order.
 */
export async function commitImage(
  writer: ImageWriter,
  pageCount: number,
  progress: Progress,
  produce: (write: (firstIndex: number, bytes: Uint8Array) => Promise<void>) => void | Promise<void>,
): Promise<CommitResult> {
  const phase = progress.phase('write image', pageCount);
  let done = 0;
  await produce(async (first, bytes) => {
    await writer.writePagesAsync(first, bytes);
    done += bytes.length / 4096;
    phase.update(done);
  });
  const result = await writer.commitAsync();
  phase.end();
  return result;
}
