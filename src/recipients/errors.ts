/** A source file the producer cannot use as it is; `line` is the 1-based physical line of the file when one is to blame. */
export class CsvInputError extends Error {
  override name = "CsvInputError";
  constructor(
    message: string,
    readonly line?: number,
  ) {
    super(message);
  }
}
