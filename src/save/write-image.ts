import type { CommitResult, ImageWriter } from '../image/index.ts';
import type { Progress } from '../metrics/progress.ts';

/**
 * Writes the image's pages from `parts` (whole pages, consecutive in the image from
 * page 0, scattered in memory) with a progress line, then commits (signature last).
 */
export async function commitImage(writer: ImageWriter, parts: readonly Uint8Array[], progress: Progress): Promise<CommitResult> {
  const phase = progress.phase('write image', writer.pageCount);
  // In slices of 64 MiB, so that the progress line moves.
  let index = 0;
  let slice: Uint8Array[] = [];
  let sliceBytes = 0;
  const flush = async (): Promise<void> => {
    await writer.writeRunsAsync(index, slice);
    index += sliceBytes / 4096;
    phase.update(index);
    slice = [];
    sliceBytes = 0;
  };
  for (const part of parts) {
    slice.push(part);
    sliceBytes += part.length;
    if (sliceBytes >= 64 << 20) await flush();
  }
  if (sliceBytes > 0) await flush();
  const result = await writer.commitAsync();
  phase.end();
  return result;
}
