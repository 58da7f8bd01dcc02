import { UserError } from "../model/errors.ts";

/** A source file the producer cannot use as it is; `line` is the 1-based physical line of the file when one is to blame. */
export class CsvInputError extends UserError {
  override name = "CsvInputError";
  constructor(
    message: string,
    readonly line?: number,
  ) {
    super("csv_input", message, { row: line });
  }
}
