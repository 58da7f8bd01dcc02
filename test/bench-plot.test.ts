import { describe, expect, it } from "vitest";
import {
  formatCompact,
  niceTicks,
  rateFromCumulative,
  rateSeries,
  renderSvgPlot,
  type PlotSpec,
} from "../scripts/bench/plot.ts";

const spec: PlotSpec = {
  title: "bench 1M",
  xLabel: "seconds since start",
  marks: [{ x: 2, label: "send" }],
  panels: [
    {
      title: "Throughput per phase",
      yLabel: "per second",
      series: [
        {
          name: "ingest: rows staged/s",
          points: [
            [0, 0],
            [1, 400_000],
            [2, 0],
          ],
        },
        {
          name: "send: recipients/s",
          points: [
            [2, 0],
            [3, 170_000],
            [4, 0],
          ],
        },
      ],
    },
    {
      title: "RSS per process",
      yLabel: "MB",
      series: [
        {
          name: "worker#1 <a & b>",
          points: [
            [0, 120],
            [4, 150],
          ],
        },
      ],
    },
  ],
};

describe("renderSvgPlot", () => {
  const svg = renderSvgPlot(spec);

  it("draws one polyline per series, each named in the legend", () => {
    expect(svg.startsWith("<svg ")).toBe(true);
    expect(svg.trimEnd().endsWith("</svg>")).toBe(true);
    expect(svg.match(/<polyline /g)).toHaveLength(3);
    expect(svg).toContain(">ingest: rows staged/s</text>");
    expect(svg).toContain(">send: recipients/s</text>");
  });

  it("labels the axes, the panels and the phase marks", () => {
    expect(svg).toContain(">per second</text>");
    expect(svg).toContain(">MB</text>");
    expect(svg.match(/>seconds since start<\/text>/g)).toHaveLength(2);
    expect(svg).toContain(">Throughput per phase</text>");
    expect(svg).toContain(">send</text>");
    expect(svg).toContain(">400k</text>"); // a y tick of the throughput panel
  });

  it("escapes names and keeps every point inside the plot area", () => {
    expect(svg).toContain("worker#1 &lt;a &amp; b&gt;");
    expect(svg).not.toContain("<a &");
    for (const [, points] of svg.matchAll(/points="([^"]*)"/g)) {
      for (const pair of points!.split(" ")) {
        const [x, y] = pair.split(",").map(Number);
        expect(x).toBeGreaterThanOrEqual(72);
        expect(x).toBeLessThanOrEqual(960 - 200);
        expect(y).toBeGreaterThan(0);
        expect(y).toBeLessThan(Number(/height="(\d+)"/.exec(svg)![1]));
      }
    }
  });
});

describe("plot helpers", () => {
  it("picks round ticks", () => {
    expect(niceTicks(0, 10, 5)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(niceTicks(0, 420_000, 5)).toEqual([0, 100_000, 200_000, 300_000, 400_000]);
    expect(formatCompact(1_500_000)).toBe("1.5M");
    expect(formatCompact(12_000)).toBe("12k");
  });

  it("turns buckets into a rate series with gaps filled and zero ends", () => {
    const points = rateSeries(
      [
        { startMs: 1000, count: 50 },
        { startMs: 1500, count: 100 },
      ],
      250,
      0,
    );
    expect(points).toEqual([
      [1, 0],
      [1.125, 200],
      [1.375, 0],
      [1.625, 400],
      [1.75, 0],
    ]);
  });

  it("turns cumulative readings into steps, 0 after the last until the end", () => {
    expect(
      rateFromCumulative(
        [
          [0, 0],
          [500, 100],
        ],
        0,
        1000,
      ),
    ).toEqual([
      [0, 0],
      [0, 200],
      [0.5, 200],
      [0.5, 0],
      [1, 0],
    ]);
  });
});
