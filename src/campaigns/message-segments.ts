import { SegmentedMessage } from "sms-segments-calculator";
import { TEMPLATE_VARIABLE_PATTERN } from "./template-preflight.ts";

/** How an SMS text goes over the air: GSM-7 (160 characters, 153 per part) or UCS-2 (70, 67 per part). */
export interface MessageMeasure {
  encoding: "GSM-7" | "UCS-2";
  segments: number;
  characters: number;
}

/** Segment counts come from sms-segments-calculator (Twilio's tables, GSM extension characters count twice), never from a hand-written table. */
export function measureMessage(text: string): MessageMeasure {
  const message = new SegmentedMessage(text, "auto");
  return {
    encoding: message.encodingName === "UCS-2" ? "UCS-2" : "GSM-7",
    segments: message.segmentsCount,
    characters: message.numberOfCharacters,
  };
}

/** The text one recipient would get: each variable with a value replaced, the others (provider presets) left as written. */
export function renderTemplate(content: string, values: Readonly<Record<string, string>>): string {
  return content.replace(TEMPLATE_VARIABLE_PATTERN, (whole, a: string | undefined, b: string | undefined) => {
    const name = (a ?? b)!;
    return Object.hasOwn(values, name) ? values[name]! : whole;
  });
}
