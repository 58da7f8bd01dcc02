// A hand-written SVG line chart for `npm run bench -- --plot`: panels stacked on one time axis, each with
// its y axis, grid, one polyline per series and a legend. Pure functions: series in, SVG text out.

export interface PlotSeries {
  name: string;
  /** [x, y] points in x order. */
  points: Array<[number, number]>;
}

export interface PlotPanel {
  title: string;
  yLabel: string;
  series: PlotSeries[];
  /** Tick label of a y value (default: 12k, 1.5M style). */
  formatY?: (y: number) => string;
}

export interface PlotSpec {
  title: string;
  xLabel: string;
  panels: PlotPanel[];
  /** Vertical markers on every panel, e.g. where each phase starts. */
  marks?: Array<{ x: number; label: string }>;
  width?: number;
  panelHeight?: number;
}

const PALETTE = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#ff7f0e",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#17becf",
  "#7f7f7f",
  "#bcbd22",
];

const MARGIN = { left: 72, right: 200, top: 36, bottom: 44 };
const PANEL_GAP = 56;

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&${{ "<": "lt", ">": "gt", "&": "amp", '"': "quot", "'": "apos" }[c]!};`);
}

/** Compact number: 950, 12k, 1.5M. */
export function formatCompact(n: number): string {
  const abs = Math.abs(n);
  const trim = (v: number) => String(Number(v.toFixed(v < 10 ? 1 : 0)));
  if (abs >= 1e6) return `${trim(n / 1e6)}M`;
  if (abs >= 1e3) return `${trim(n / 1e3)}k`;
  return trim(n);
}

/** About `count` round tick values covering [min, max] (steps of 1, 2 or 5 × 10^k). */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? 10 * magnitude;
  const ticks: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

const num = (n: number) => String(Math.round(n * 10) / 10);

export function renderSvgPlot(spec: PlotSpec): string {
  const width = spec.width ?? 960;
  const panelHeight = spec.panelHeight ?? 260;
  const plotWidth = width - MARGIN.left - MARGIN.right;
  const height = MARGIN.top + spec.panels.length * (panelHeight + PANEL_GAP) - PANEL_GAP + MARGIN.bottom;
  const allX = spec.panels.flatMap((p) => p.series.flatMap((s) => s.points.map(([x]) => x)));
  const xMin = Math.min(0, ...allX);
  const xMax = Math.max(xMin + 1, ...allX, ...(spec.marks ?? []).map((m) => m.x));
  const xTicks = niceTicks(xMin, xMax, 10);
  const sx = (x: number) => MARGIN.left + ((x - xMin) / (xMax - xMin)) * plotWidth;

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(spec.title)}</text>`,
  ];
  let colour = 0;
  spec.panels.forEach((panel, index) => {
    const top = MARGIN.top + index * (panelHeight + PANEL_GAP);
    const bottom = top + panelHeight;
    const ys = panel.series.flatMap((s) => s.points.map(([, y]) => y));
    const yMax = Math.max(1, ...ys) * 1.05;
    const yTicks = niceTicks(0, yMax, 5);
    const sy = (y: number) => bottom - (y / yMax) * panelHeight;
    const formatY = panel.formatY ?? formatCompact;
    out.push(`<g class="panel">`);
    out.push(
      `<text x="${MARGIN.left}" y="${top - 8}" font-size="13" font-weight="bold">${escapeXml(panel.title)}</text>`,
    );
    // Grid and tick labels.
    for (const y of yTicks) {
      out.push(
        `<line x1="${MARGIN.left}" y1="${num(sy(y))}" x2="${MARGIN.left + plotWidth}" y2="${num(sy(y))}" stroke="#e5e5e5"/>`,
        `<text x="${MARGIN.left - 6}" y="${num(sy(y) + 4)}" text-anchor="end">${escapeXml(formatY(y))}</text>`,
      );
    }
    for (const x of xTicks) {
      out.push(
        `<line x1="${num(sx(x))}" y1="${bottom}" x2="${num(sx(x))}" y2="${bottom + 4}" stroke="#333"/>`,
        `<text x="${num(sx(x))}" y="${bottom + 17}" text-anchor="middle">${escapeXml(formatCompact(x))}</text>`,
      );
    }
    for (const mark of spec.marks ?? []) {
      out.push(
        `<line x1="${num(sx(mark.x))}" y1="${top}" x2="${num(sx(mark.x))}" y2="${bottom}" stroke="#999" stroke-dasharray="4 3"/>`,
        `<text x="${num(sx(mark.x) + 3)}" y="${top + 11}" fill="#666" font-size="10">${escapeXml(mark.label)}</text>`,
      );
    }
    // Axes and their labels.
    out.push(
      `<line x1="${MARGIN.left}" y1="${top}" x2="${MARGIN.left}" y2="${bottom}" stroke="#333"/>`,
      `<line x1="${MARGIN.left}" y1="${bottom}" x2="${MARGIN.left + plotWidth}" y2="${bottom}" stroke="#333"/>`,
      `<text class="axis-label" transform="translate(16 ${(top + bottom) / 2}) rotate(-90)" text-anchor="middle">${escapeXml(panel.yLabel)}</text>`,
      `<text class="axis-label" x="${MARGIN.left + plotWidth / 2}" y="${bottom + 34}" text-anchor="middle">${escapeXml(spec.xLabel)}</text>`,
    );
    // One polyline per series, and its legend entry.
    panel.series.forEach((series, i) => {
      const stroke = PALETTE[colour++ % PALETTE.length]!;
      const points = series.points.map(([x, y]) => `${num(sx(x))},${num(sy(y))}`).join(" ");
      out.push(
        `<polyline fill="none" stroke="${stroke}" stroke-width="1.5" points="${points}"><title>${escapeXml(series.name)}</title></polyline>`,
      );
      const ly = top + 8 + i * 18;
      const lx = MARGIN.left + plotWidth + 14;
      out.push(
        `<line x1="${lx}" y1="${ly}" x2="${lx + 20}" y2="${ly}" stroke="${stroke}" stroke-width="3"/>`,
        `<text x="${lx + 26}" y="${ly + 4}">${escapeXml(series.name)}</text>`,
      );
    });
    out.push(`</g>`);
  });
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}

/**
 * Counts per time bucket → a rate series: [seconds since `originMs`, count per second] at each bucket's
 * middle, empty buckets between the first and the last as 0, and 0 at both ends so the line starts and
 * ends on the axis.
 */
export function rateSeries(
  buckets: Array<{ startMs: number; count: number }>,
  bucketMs: number,
  originMs: number,
): Array<[number, number]> {
  if (buckets.length === 0) return [];
  const byStart = new Map(buckets.map((b) => [b.startMs, b.count]));
  const first = Math.min(...byStart.keys());
  const last = Math.max(...byStart.keys());
  const t = (ms: number) => (ms - originMs) / 1000;
  const points: Array<[number, number]> = [[t(first), 0]];
  for (let start = first; start <= last; start += bucketMs) {
    points.push([t(start + bucketMs / 2), ((byStart.get(start) ?? 0) * 1000) / bucketMs]);
  }
  points.push([t(last + bucketMs), 0]);
  return points;
}

/** Cumulative counts at times ([epoch ms, total so far]) → rates between consecutive readings. */
export function rateFromCumulative(
  readings: Array<[number, number]>,
  originMs: number,
  endMs?: number,
): Array<[number, number]> {
  if (readings.length < 2) return [];
  const t = (ms: number) => (ms - originMs) / 1000;
  const points: Array<[number, number]> = [[t(readings[0]![0]), 0]];
  for (let i = 1; i < readings.length; i++) {
    const [at0, n0] = readings[i - 1]!;
    const [at1, n1] = readings[i]!;
    if (at1 <= at0) continue;
    const rate = ((n1 - n0) * 1000) / (at1 - at0);
    // A step: the rate held over the interval.
    points.push([t(at0), rate], [t(at1), rate]);
  }
  const lastAt = readings[readings.length - 1]![0];
  points.push([t(lastAt), 0]);
  if (endMs !== undefined && endMs > lastAt) points.push([t(endMs), 0]);
  return points;
}
