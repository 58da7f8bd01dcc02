import { createWriteStream } from "node:fs";
import { once } from "node:events";

/**
 * A realistic list: a phone column written in mixed formats (+65 8xxx xxxx, 65xxxxxxxx, 0065…), two
 * attribute columns, ~0.5 % invalid numbers and ~1 % duplicates.
 */
export async function generateBenchCsv(path: string, rows: number): Promise<void> {
  const out = createWriteStream(path);
  let chunk = "phone,first_name,city\n";
  const cities = ["Singapore", "Jurong", "Tampines", "Woodlands", "Bedok"];
  const names = ["Aisha", "Ben", "Chen", "Dewi", "Elena", "Farid", "Grace", "Hiro"];
  for (let i = 0; i < rows; i++) {
    const n = 81_000_000 + ((i * 7_919) % 17_000_000); // distinct SG mobiles (81xx–97xx) for i < 17M
    let phone: string;
    if (i % 200 === 199)
      phone = "12345"; // invalid
    else if (i % 100 === 50)
      phone = `+65${81_000_000 + (((i - 1) * 7_919) % 17_000_000)}`; // duplicate of the previous row
    else if (i % 3 === 0) phone = `+65 ${String(n).slice(0, 4)} ${String(n).slice(4)}`;
    else if (i % 3 === 1) phone = `65${n}`;
    else phone = `0065${n}`;
    chunk += `${phone},${names[i % names.length]},${cities[i % cities.length]}\n`;
    if (chunk.length > 1 << 16) {
      if (!out.write(chunk)) await once(out, "drain");
      chunk = "";
    }
  }
  out.end(chunk);
  await once(out, "finish");
}
