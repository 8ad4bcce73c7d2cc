/**
 * Pictures, as SVG (and PNG on request, rendered by resvg): the memory map of a cycle
 * at the atomic point, pre-copy rounds, bars per strategy, and a heat map of faults.
 * Plain SVG elements, no scripts or fonts beyond a generic family, so they render the
 * same in a browser, a CI artifact viewer or resvg.
 */
import { OWNERS } from '../src/abi.ts';
import type { FrameMap } from '../src/cycle.ts';

const font = (size = 12) => `font-family="sans-serif" font-size="${size}"`;

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

function svg(width: number, height: number, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

/** What a frame was at the atomic point, as the map colours it. */
const OWNER_CLASSES: ReadonlyArray<{ name: string; color: string; test: (owner: number) => boolean }> = [
  { name: 'free', color: '#eeeeee', test: (o) => o === OWNERS.FREE.value },
  { name: 'kernel, reserved, heap', color: '#4e79a7', test: (o) => o === OWNERS.KERNEL.value || o === OWNERS.RESERVED.value || o === OWNERS.KHEAP.value },
  { name: 'page tables, allocator, stacks', color: '#76b7b2', test: (o) => o === OWNERS.PAGETABLE.value || o === OWNERS.ALLOCATOR.value || o === OWNERS.KSTACK.value },
  { name: 'cache', color: '#edc948', test: (o) => o === OWNERS.CACHE.value },
  { name: 'task buffers', color: '#59a14f', test: (o) => o >= OWNERS.TASK_BASE.value },
  { name: "the hibernation's own", color: '#b07aa1', test: (o) => o === OWNERS.SNAPSHOT.value },
  { name: 'not RAM (NOSAVE)', color: '#333333', test: (o) => o === OWNERS.NOSAVE.value },
];

/** What became of a frame, as the lower half of its cell shows it. */
const FATES = [
  { name: 'not in the image', color: '#ffffff' },
  { name: 'saved, loaded in place', color: '#2e7d32' },
  { name: 'saved, loaded through a PBE', color: '#f28e2b' },
  { name: 'saved, faulted during the save', color: '#e15759' },
] as const;

const bit = (words: Uint32Array | undefined, pfn: number) => (words ? (words[pfn >>> 5]! >>> (pfn & 31)) & 1 : 0);

/**
 * The memory map of one cycle: one cell per frame, in rows of `perRow` frames, its upper
 * half coloured by owner at the atomic point, its lower half by what became of it (not
 * saved; saved and loaded in place; saved and loaded through a PBE; faulted while a live
 * save wrote it). Cells of one colour in a row are drawn as one rectangle.
 */
export function memoryMapSvg(map: FrameMap, title: string): string {
  const n = map.frameCount;
  const perRow = n <= 8192 ? 128 : n <= 65536 ? 256 : 512;
  const cell = n <= 8192 ? 6 : n <= 65536 ? 3 : 2;
  const rows = Math.ceil(n / perRow);
  const left = 60;
  const top = 40;
  const mapW = perRow * cell;
  const mapH = rows * cell;
  const legendTop = top + mapH + 20;
  const width = Math.max(left + mapW + 20, 560);
  const height = legendTop + 18 * (OWNER_CLASSES.length + FATES.length + 1) + 10;
  const ownerClass = (pfn: number) => OWNER_CLASSES.findIndex((c) => c.test(map.owners[pfn] ?? 0));
  const fate = (pfn: number) => {
    if (!bit(map.saved, pfn)) return 0;
    if (bit(map.faulted, pfn)) return 3;
    return map.inPlace && !bit(map.inPlace, pfn) ? 2 : 1;
  };
  const body: string[] = [`<text x="${left}" y="24" ${font(14)}>${esc(title)}</text>`];
  for (const [layer, classify, colors] of [
    [0, ownerClass, OWNER_CLASSES.map((c) => c.color)],
    [1, fate, FATES.map((f) => f.color)],
  ] as const) {
    const h = cell / 2;
    for (let r = 0; r < rows; r++) {
      const y = top + r * cell + layer * h;
      let start = r * perRow;
      const end = Math.min(n, start + perRow);
      while (start < end) {
        const k = classify(start);
        let stop = start + 1;
        while (stop < end && classify(stop) === k) stop++;
        if (colors[k] !== '#ffffff') body.push(`<rect x="${left + (start - r * perRow) * cell}" y="${y}" width="${(stop - start) * cell}" height="${h}" fill="${colors[k]}"/>`);
        start = stop;
      }
    }
  }
  for (let r = 0; r < rows; r += Math.max(1, Math.round(rows / 8))) {
    body.push(`<text x="${left - 6}" y="${top + r * cell + cell}" ${font(10)} text-anchor="end">0x${(r * perRow).toString(16)}</text>`);
  }
  body.push(`<rect x="${left}" y="${top}" width="${mapW}" height="${mapH}" fill="none" stroke="#999"/>`);
  let y = legendTop;
  body.push(`<text x="${left}" y="${y}" ${font()}>upper half: owner at the atomic point; lower half: what became of the frame (${perRow} frames a row)</text>`);
  for (const c of [...OWNER_CLASSES, ...FATES]) {
    y += 18;
    body.push(`<rect x="${left}" y="${y - 10}" width="12" height="12" fill="${c.color}" stroke="#999"/>`, `<text x="${left + 18}" y="${y}" ${font()}>${esc(c.name)}</text>`);
  }
  return svg(width, height, body);
}

export interface Bar {
  readonly label: string;
  readonly value: number;
  /** Text after the value. */
  readonly unit: string;
  readonly failed?: boolean;
}

/** Horizontal bars, one per label (downtime per strategy, largest image per strategy). */
export function barChartSvg(title: string, bars: readonly Bar[]): string {
  const left = 260;
  const barMax = 380;
  const rowH = 22;
  const top = 40;
  const max = Math.max(1e-9, ...bars.map((b) => b.value));
  const height = top + rowH * bars.length + 20;
  const body = [`<text x="10" y="24" ${font(14)}>${esc(title)}</text>`];
  bars.forEach((b, i) => {
    const y = top + i * rowH;
    const w = Math.max(1, (b.value / max) * barMax);
    body.push(
      `<text x="${left - 8}" y="${y + 14}" ${font()} text-anchor="end">${esc(b.label)}</text>`,
      `<rect x="${left}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${b.failed ? '#e15759' : '#4e79a7'}"/>`,
      `<text x="${left + w + 6}" y="${y + 14}" ${font()}>${esc(`${formatNumber(b.value)} ${b.unit}${b.failed ? ' (FAIL)' : ''}`)}</text>`,
    );
  });
  return svg(left + barMax + 140, height, body);
}

export interface Series {
  readonly label: string;
  readonly points: ReadonlyArray<readonly [number, number]>;
}

/** Lines over a shared x axis (pre-copy rounds: pages dirty after each round). */
export function lineChartSvg(title: string, xLabel: string, yLabel: string, series: readonly Series[]): string {
  const left = 70;
  const top = 40;
  const w = 480;
  const h = 260;
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const xMax = Math.max(1, ...xs);
  const yMax = Math.max(1, ...ys);
  const px = (x: number) => left + (x / xMax) * w;
  const py = (y: number) => top + h - (y / yMax) * h;
  const palette = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7'];
  const body = [
    `<text x="10" y="24" ${font(14)}>${esc(title)}</text>`,
    `<line x1="${left}" y1="${top + h}" x2="${left + w}" y2="${top + h}" stroke="#333"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${top + h}" stroke="#333"/>`,
    `<text x="${left + w / 2}" y="${top + h + 34}" ${font()} text-anchor="middle">${esc(xLabel)}</text>`,
    `<text x="14" y="${top + h / 2}" ${font()} transform="rotate(-90 14 ${top + h / 2})" text-anchor="middle">${esc(yLabel)}</text>`,
    `<text x="${left - 6}" y="${top + 4}" ${font()} text-anchor="end">${formatNumber(yMax)}</text>`,
    `<text x="${left - 6}" y="${top + h}" ${font()} text-anchor="end">0</text>`,
  ];
  for (let x = 0; x <= xMax; x += Math.max(1, Math.ceil(xMax / 10))) body.push(`<text x="${px(x)}" y="${top + h + 16}" ${font()} text-anchor="middle">${x}</text>`);
  series.forEach((s, i) => {
    const color = palette[i % palette.length]!;
    body.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${s.points.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y] of s.points) body.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${color}"/>`);
    body.push(`<rect x="${left + w + 16}" y="${top + i * 18}" width="12" height="12" fill="${color}"/>`, `<text x="${left + w + 34}" y="${top + i * 18 + 10}" ${font()}>${esc(s.label)}</text>`);
  });
  return svg(left + w + 40 + 8 * Math.max(10, ...series.map((x) => x.label.length)), Math.max(top + h + 50, top + 18 * series.length + 20), body);
}

/** A heat map: counts[row][column], darker = more (faults per PFN range and time slice). */
export function heatMapSvg(title: string, counts: readonly (readonly number[])[], xLabel: string, yLabel: string, rowLabel: (row: number) => string, columnLabel: (column: number) => string): string {
  const left = 90;
  const top = 40;
  const rows = counts.length;
  const cols = Math.max(1, ...counts.map((r) => r.length));
  const cw = Math.max(2, Math.floor(600 / cols));
  const ch = Math.max(2, Math.floor(400 / Math.max(1, rows)));
  const max = Math.max(1, ...counts.flat());
  const body = [`<text x="10" y="24" ${font(14)}>${esc(title)}</text>`];
  counts.forEach((row, r) =>
    row.forEach((c, k) => {
      if (!c) return;
      const shade = Math.sqrt(c / max); // square root: a few busy cells should not hide the rest
      const v = Math.round(255 * (1 - shade));
      body.push(`<rect x="${left + k * cw}" y="${top + r * ch}" width="${cw}" height="${ch}" fill="rgb(255,${v},${Math.round(v * 0.6)})"/>`);
    }),
  );
  body.push(`<rect x="${left}" y="${top}" width="${cols * cw}" height="${rows * ch}" fill="none" stroke="#999"/>`);
  for (let r = 0; r < rows; r += Math.max(1, Math.ceil(rows / 10))) body.push(`<text x="${left - 6}" y="${top + r * ch + ch}" ${font(10)} text-anchor="end">${esc(rowLabel(r))}</text>`);
  for (let k = 0; k < cols; k += Math.max(1, Math.ceil(cols / 8))) body.push(`<text x="${left + k * cw}" y="${top + rows * ch + 16}" ${font(10)}>${esc(columnLabel(k))}</text>`);
  body.push(
    `<text x="${left + (cols * cw) / 2}" y="${top + rows * ch + 36}" ${font()} text-anchor="middle">${esc(xLabel)}</text>`,
    `<text x="14" y="${top + (rows * ch) / 2}" ${font()} transform="rotate(-90 14 ${top + (rows * ch) / 2})" text-anchor="middle">${esc(yLabel)}</text>`,
    `<text x="${left + cols * cw + 10}" y="${top + 12}" ${font()}>darkest: ${max} faults</text>`,
  );
  return svg(left + cols * cw + 160, top + rows * ch + 50, body);
}

function formatNumber(v: number): string {
  return Number.isInteger(v) ? String(v) : v < 10 ? v.toFixed(2) : v.toFixed(1);
}

/** An SVG rendered to PNG (resvg, an optional dependency); a clear error when it is not installed. */
export async function svgToPng(svgText: string): Promise<Uint8Array> {
  let mod: { Resvg: new (svg: string, options?: object) => { render(): { asPng(): Uint8Array } } };
  try {
    mod = (await import('@resvg/resvg-js')) as typeof mod;
  } catch (err) {
    throw new Error(`PNG pictures need the optional dependency @resvg/resvg-js, which is not installed (${(err as Error).message.split('\n')[0]}); SVG needs nothing`);
  }
  return new mod.Resvg(svgText, { font: { loadSystemFonts: true } }).render().asPng();
}

/** Writes `svgText` to `path`, as PNG when the path ends in .png. */
export async function writePicture(path: string, svgText: string): Promise<void> {
  const { writeFileSync } = await import('node:fs');
  writeFileSync(path, path.toLowerCase().endsWith('.png') ? await svgToPng(svgText) : svgText);
}

/** Faults as a heat map: time slices (columns) × PFN ranges (rows), from (guest ms, PFN) pairs. */
export function faultHeatMapSvg(title: string, faults: ReadonlyArray<readonly [number, number]>, columns = 60, rows = 48): string {
  if (!faults.length) return heatMapSvg(`${title} (no faults)`, [[]], 'guest time', 'PFN', () => '', () => '');
  let t0 = Infinity, t1 = -Infinity, p0 = Infinity, p1 = -Infinity;
  for (const [t, p] of faults) {
    t0 = Math.min(t0, t);
    t1 = Math.max(t1, t);
    p0 = Math.min(p0, p);
    p1 = Math.max(p1, p);
  }
  const dt = Math.max(1e-9, (t1 - t0) / columns);
  const dp = Math.max(1, Math.ceil((p1 - p0 + 1) / rows));
  const counts = Array.from({ length: Math.ceil((p1 - p0 + 1) / dp) }, () => new Array<number>(columns).fill(0));
  for (const [t, p] of faults) counts[Math.floor((p - p0) / dp)]![Math.min(columns - 1, Math.floor((t - t0) / dt))]!++;
  return heatMapSvg(title, counts, 'guest time (ms since boot)', 'PFN', (r) => `0x${(p0 + r * dp).toString(16)}`, (k) => (t0 + k * dt).toFixed(0));
}
