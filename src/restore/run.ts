/**
 * Runs a restore strategy: plan (nothing written; a refusal leaves the image resumable),
 * then load, then the report with what every restore shares (pages in place and through
 * PBEs, frames taken from the boot kernel, phases).
 */
import { OWNERS } from '../abi.ts';
import { resolveOptions, type GivenOptions, type OptionSpecs, type StatSpecs } from '../declarations.ts';
import { round1 } from '../metrics/timer.ts';
import type { RestoreContext, RestoreLoad, RestoreReport, RestoreStrategy } from './strategy.ts';

export async function runRestore<O extends OptionSpecs, S extends StatSpecs, P>(
  strategy: RestoreStrategy<O, S, P>,
  given: GivenOptions | undefined,
  ctx: RestoreContext,
): Promise<{ load: RestoreLoad<S>; report: RestoreReport }> {
  const options = resolveOptions(`restore strategy ${strategy.name}`, strategy.options, given);
  const alloc = ctx.guest.allocator;
  const bootKernelFrames = alloc.frameCount - alloc.freeCount;
  const plan = await ctx.timer.time('plan', () => strategy.plan(ctx, options));
  const load = await ctx.timer.time('load', () => strategy.load(ctx, plan));
  const owners = ctx.guest.allocator.owners;
  let snapshotFrames = 0;
  for (let pfn = owners.indexOf(OWNERS.SNAPSHOT.value); pfn >= 0; pfn = owners.indexOf(OWNERS.SNAPSHOT.value, pfn + 1)) snapshotFrames++;
  return {
    load,
    report: {
      strategy: strategy.name,
      options: options as Record<string, number | boolean | undefined>,
      pagesLoaded: ctx.image.pfns.length,
      inPlacePages: load.inPlacePages,
      pbes: load.pbes,
      unchangedPages: load.unchangedPages ?? 0,
      snapshotFrames,
      bootKernelFrames,
      phasesMs: Object.fromEntries(Object.entries(ctx.timer.phases).map(([k, v]) => [k, round1(v)])),
      stats: load.stats,
    },
  };
}
