/**
 * Kyle Moffett's freezer (LKML, July 2007): freezing is untrappable, a frozen task never
 * runs, and a save may thaw only the tasks it needs ("userspace resumes the processes
 * needed for sync"): here kwriter, the `helper` workload.
 */
import { describe, expect, it } from 'vitest';
import { STRUCTS } from '../src/abi.ts';
import { fieldAddr } from '../src/machine/guest-structs.ts';
import { crc32 } from '../src/image/crc.ts';
import { Guest } from '../src/machine/guest.ts';
import { guestImage, MiB } from './helpers.ts';

describe('the freezer', () => {
  it('freezes every freezable task; a selective thaw runs exactly the chosen task while the frozen ones do not move', async () => {
    const g = await Guest.boot({ ramBytes: 32 * MiB, image: guestImage(), workload: 'churn:1M@100,stream:1M,helper', seed: 41, deterministic: true });
    try {
      await g.runTicks(5);
      await g.enterPm();
      expect(await g.pm('FREEZE')).toBe(3);
      const tasks = g.tasks();
      expect(tasks.filter((t) => t.freezable).map((t) => t.state)).toEqual(['frozen', 'frozen', 'frozen']);
      const helper = tasks.find((t) => t.kind === 'helper')!;
      const others = tasks.filter((t) => t.freezable && t.kind !== 'helper');
      const esp = (id: number) => g.machine.readU32(fieldAddr('task_struct', g.bootInfo.task_table + id * STRUCTS.task_struct.size, 'esp'));
      const snapshot = () => others.map((t) => ({ id: t.id, switches: g.tasks()[t.id]!.switches, esp: esp(t.id), memory: crc32(g.machine.view(t.bufBase, t.bufBytes)) }));
      const before = snapshot();
      const helperSteps = g.machine.readU32(helper.bufBase);
      const helperSwitches = helper.switches;

      expect(await g.pm('THAW', 1 << helper.id)).toBe(1);
      await g.pm('RUN', 10); // the pm task sleeps ten ticks: whatever is runnable runs
      expect(g.tasks()[helper.id]!.state).not.toBe('frozen');
      expect(g.machine.readU32(helper.bufBase) - helperSteps).toBeGreaterThanOrEqual(8);
      expect(g.tasks()[helper.id]!.switches - helperSwitches).toBeGreaterThanOrEqual(8);
      // The frozen tasks: never switched to, their stacks and memory as they were.
      expect(snapshot()).toEqual(before);
      for (const t of others) expect(g.tasks()[t.id]!.state).toBe('frozen');

      // Freezing again catches the helper at its next safe point; then everything thaws.
      expect(await g.pm('FREEZE')).toBe(3);
      expect(await g.pm('THAW', 0xffffffff)).toBe(3);
      await g.pm('RUN', 5);
      expect(snapshot().map((s) => s.switches)).not.toEqual(before.map((s) => s.switches));
      await g.pm('DONE');
    } finally {
      await g.machine.powerOff();
    }
  });
});
