import { EXIT } from "./exit-codes.ts";

/**
 * Ctrl-C while a command waits: the first SIGINT calls `onFirst` (stop waiting, shut a worker down
 * gracefully), a second one exits at once with 130. Returns the function that removes the handler.
 */
export function onInterrupt(onFirst: () => void): () => void {
  let count = 0;
  const handler = () => {
    count++;
    if (count === 1) onFirst();
    else {
      process.stderr.write("\nsmsblast: interrupted again: exiting now\n");
      process.exit(EXIT.interrupted);
    }
  };
  process.on("SIGINT", handler);
  return () => process.off("SIGINT", handler);
}
