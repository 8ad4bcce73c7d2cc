/**
 * One process of the faults bench (bench/faults.ts): chooses V8's compilers for v86 as
 * its argument says (tier-up or liftoff-only), runs both fault benches, and prints them
 * as JSON on stdout.
 */
import { chooseWasmTiers, WASM_TIERS, type WasmTiers } from '../src/machine/v86.ts';
import { benchFaultsHere } from './faults.ts';

const tiers = process.argv[2] as WasmTiers;
if (!WASM_TIERS.includes(tiers)) throw new Error(`faults-child: one of ${WASM_TIERS.join(', ')}, not ${tiers}`);
chooseWasmTiers(tiers);
process.stdout.write(`${JSON.stringify(await benchFaultsHere())}\n`);
