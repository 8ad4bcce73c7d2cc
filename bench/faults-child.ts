/**
 * One process of the faults bench (bench/faults.ts): chooses V8's compilers for v86 as
 * its argument says (tier-up or liftoff-only), runs both fault benches, and prints them
 * as JSON on stdout.
 */
import { chooseWasmTiers, type WasmTiers } from '../src/machine/v86.ts';
import { benchFaultsHere } from './faults.ts';

const tiers = process.argv[2];
if (tiers !== 'tier-up' && tiers !== 'liftoff-only') throw new Error(`faults-child: tier-up or liftoff-only, not ${tiers}`);
chooseWasmTiers(tiers as WasmTiers);
process.stdout.write(`${JSON.stringify(await benchFaultsHere())}\n`);
