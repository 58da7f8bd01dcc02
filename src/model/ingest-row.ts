/** One row of an audience as the producer judged it: a normalised number to send to, or a reject with its reason. */
export interface IngestRow {
  /** 1-based data row number (the header is row 0), as a spreadsheet user counts them after the header. */
  rowNumber: number;
  raw: string;
  phone: string | null;
  rejectReason: string | null;
  params: Record<string, string> | null;
}
