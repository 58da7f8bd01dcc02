import type { ApplyReport, CallbackRefusalReason } from "../campaigns/delivery-reports.ts";

/**
 * Counters of the delivery pipeline, kept in-process: `smsblast_delivery_reports_total{status}`,
 * `smsblast_delivery_callback_refusals_total{reason}` and the report-delay histogram
 * (`smsblast_delivery_report_delay_seconds`). prometheusText() renders them for a /metrics route.
 */
export class DeliveryMetrics {
  readonly reports = new Map<string, number>();
  readonly refusals = new Map<string, number>();
  readonly outcomes = { stored: 0, replays: 0, verifications: 0, unmatched: 0, changed: 0 };
  static readonly DELAY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600];
  private readonly delayCounts = new Array<number>(DeliveryMetrics.DELAY_BUCKETS.length + 1).fill(0);
  private delaySum = 0;

  /**
   * Callback handling time in the API (receipt → answer, storing included): the receiver's p99 target
   * (50 ms), hence the fine buckets below 100 ms.
   */
  static readonly CALLBACK_BUCKETS = [
    0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10,
  ];
  private readonly callbackCounts = new Array<number>(DeliveryMetrics.CALLBACK_BUCKETS.length + 1).fill(0);
  private callbackSum = 0;

  observeCallback(seconds: number): void {
    this.callbackSum += seconds;
    let i = DeliveryMetrics.CALLBACK_BUCKETS.findIndex((le) => seconds <= le);
    if (i === -1) i = DeliveryMetrics.CALLBACK_BUCKETS.length;
    this.callbackCounts[i]! += 1;
  }

  countRefusal(reason: CallbackRefusalReason | "too_large"): void {
    this.refusals.set(reason, (this.refusals.get(reason) ?? 0) + 1);
  }

  countApplied(report: ApplyReport): void {
    for (const [status, n] of Object.entries(report.byStatus))
      this.reports.set(status, (this.reports.get(status) ?? 0) + n);
    this.outcomes.unmatched += report.unmatched;
    this.outcomes.changed += report.changed;
    for (const { seconds, count } of report.delays) {
      this.delaySum += seconds * count;
      let i = DeliveryMetrics.DELAY_BUCKETS.findIndex((le) => seconds <= le);
      if (i === -1) i = DeliveryMetrics.DELAY_BUCKETS.length;
      this.delayCounts[i]! += count;
    }
  }

  prometheusText(): string {
    const lines = ["# TYPE smsblast_delivery_reports_total counter"];
    for (const [status, n] of this.reports) lines.push(`smsblast_delivery_reports_total{status="${status}"} ${n}`);
    lines.push("# TYPE smsblast_delivery_callback_refusals_total counter");
    for (const [reason, n] of this.refusals)
      lines.push(`smsblast_delivery_callback_refusals_total{reason="${reason}"} ${n}`);
    lines.push("# TYPE smsblast_delivery_report_delay_seconds histogram");
    let cumulative = 0;
    DeliveryMetrics.DELAY_BUCKETS.forEach((le, i) => {
      cumulative += this.delayCounts[i]!;
      lines.push(`smsblast_delivery_report_delay_seconds_bucket{le="${le}"} ${cumulative}`);
    });
    cumulative += this.delayCounts[DeliveryMetrics.DELAY_BUCKETS.length]!;
    lines.push(`smsblast_delivery_report_delay_seconds_bucket{le="+Inf"} ${cumulative}`);
    lines.push(
      `smsblast_delivery_report_delay_seconds_sum ${this.delaySum}`,
      `smsblast_delivery_report_delay_seconds_count ${cumulative}`,
    );
    lines.push("# TYPE smsblast_delivery_callback_duration_seconds histogram");
    let answered = 0;
    DeliveryMetrics.CALLBACK_BUCKETS.forEach((le, i) => {
      answered += this.callbackCounts[i]!;
      lines.push(`smsblast_delivery_callback_duration_seconds_bucket{le="${le}"} ${answered}`);
    });
    answered += this.callbackCounts[DeliveryMetrics.CALLBACK_BUCKETS.length]!;
    lines.push(`smsblast_delivery_callback_duration_seconds_bucket{le="+Inf"} ${answered}`);
    lines.push(
      `smsblast_delivery_callback_duration_seconds_sum ${this.callbackSum}`,
      `smsblast_delivery_callback_duration_seconds_count ${answered}`,
    );
    return lines.join("\n") + "\n";
  }
}
