/** "compiled" when dist/ is up to date with src/ under `root`, else "tsx". */
export function chooseEntry(root: string): "compiled" | "tsx";
